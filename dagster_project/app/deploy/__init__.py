"""Deployment templates (dagster.yaml for a deployed instance)."""
