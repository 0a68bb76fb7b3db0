"""The application: the `mesh` CLI, services, scaffolding, refreshes, deployment files."""
