"""Core: settings (every environment variable, read once), contracts, credentials, workspace."""
