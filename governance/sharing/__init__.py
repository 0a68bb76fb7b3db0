"""Delta Sharing: shares, recipients, masked shared copies and the sharing server."""
