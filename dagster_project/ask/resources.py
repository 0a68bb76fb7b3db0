"""The ask engine's DuckDB connections from dagster-duckdb's `DuckDBResource`, for
long-lived processes (the API server and its query workers), as in Dagster runs.

Kept apart so that short commands (`mesh ask`) never import Dagster (about 1 s): they use
`semantic_sql.IN_MEMORY`, the same in-memory database per connection. A query runs in a
worker process and the resource does not pickle, so a job carries its configuration and
the worker builds the resource from it (its fork server imports this module once).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import duckdb
from dagster_duckdb import DuckDBResource


@dataclass(frozen=True)
class ResourceConnections:
    """A `DuckDBResource`'s connections, by the resource's configuration."""

    database: str = ":memory:"
    connection_config: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, resource: DuckDBResource) -> ResourceConnections:
        return cls(resource.database, dict(resource.connection_config))

    @property
    def resource(self) -> DuckDBResource:
        config = dict(self.connection_config)
        return DuckDBResource(database=self.database, connection_config=config)

    def get_connection(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self.resource.get_connection()
