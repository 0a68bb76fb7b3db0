"""The dragracer domain."""
