"""Imported by the query workers' fork server only: loads what every query needs once,
so no worker pays for it (sqlglot builds its DuckDB dialect on first use, ~1.5 s).
Nothing here starts a thread: polars, DuckDB and delta-rs start theirs in each worker."""

import sqlglot

import dagster_project.ask.worker  # noqa: F401  (the workers' code)

sqlglot.parse_one("SELECT 1 AS warm", read="duckdb")
