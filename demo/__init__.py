"""The demo mesh's data source: a seeded retail simulator (not part of the platform)."""
