"""Access: grants, masks and audit for every user-facing read; HTTP API keys."""
