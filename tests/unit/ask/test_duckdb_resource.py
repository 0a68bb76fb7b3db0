"""The ask engine's DuckDB connections: dagster-duckdb's DuckDBResource in long-lived
processes (the API server's query workers, Dagster runs), a plain in-memory database in
`mesh ask`; the same answers, and the same locked configuration either way."""

from pathlib import Path

import duckdb
import pytest
from dagster_duckdb import DuckDBResource
from fastapi.testclient import TestClient
from polars.testing import assert_frame_equal

from dagster_project.ask import Asker
from dagster_project.ask.api import Caller, create_app
from dagster_project.ask.resources import ResourceConnections
from dagster_project.ask.semantic_sql import IN_MEMORY, run_query
from dagster_project.ask.worker import configure
from dagster_project.core.settings import get_limits
from dagster_project.metadata.semantics import load_semantic_layer
from tests.small_mesh import write_small_mesh

ORDERED = "SELECT store_id FROM sales.stores ORDER BY store_id"
# A setting only a connection made by this resource has: proof of where a worker's came from.
DESCENDING = {"default_order": "DESC"}
LOCKED = (
    "threads",
    "memory_limit",
    "max_temp_directory_size",
    "enable_external_access",
    "lock_configuration",
)


@pytest.fixture
def layer(lake, demo_contracts):
    write_small_mesh(lake, demo_contracts)
    return load_semantic_layer()


def test_a_workers_connection_comes_from_the_duckdb_resource_it_is_given(lake, layer):
    plain = Asker(lake, layer, provider="offline")
    resource = DuckDBResource(database=":memory:", connection_config=DESCENDING)
    served = Asker(lake, layer, provider="offline", duckdb=ResourceConnections.of(resource))
    ids = [row[0] for row in plain.run_sql(ORDERED)[1]]
    assert ids == sorted(ids) and len(ids) > 1
    assert [row[0] for row in served.run_sql(ORDERED)[1]] == ids[::-1]
    question = "What is revenue by region?"
    default = Asker(lake, layer, provider="offline", duckdb=ResourceConnections())
    assert default.ask(question).rows == plain.ask(question).rows


def _locked_settings(connections, tmp_path: Path) -> dict[str, str]:
    outside = tmp_path / "outside.csv"
    outside.write_text("secret\n42\n")
    with connections.get_connection() as con:
        configure(con, get_limits(), str(tmp_path / "temp"), memory_mb=64)
        with pytest.raises(duckdb.Error):
            con.execute(f"SELECT * FROM read_csv('{outside}')")
        for setting in ("SET enable_external_access = true", "SET lock_configuration = false"):
            with pytest.raises(duckdb.Error):
                con.execute(setting)
        names = ", ".join(f"'{name}'" for name in LOCKED)
        found = con.execute(f"SELECT name, value FROM duckdb_settings() WHERE name IN ({names})")
        return dict(found.fetchall())


def test_a_resource_connection_is_locked_like_any_query_connection(tmp_path: Path):
    locked = _locked_settings(ResourceConnections(), tmp_path)
    assert locked == _locked_settings(IN_MEMORY, tmp_path)
    assert set(locked) == set(LOCKED) and locked["lock_configuration"] == "true"


def test_the_api_servers_askers_use_a_duckdb_resource(lake, layer):
    client = TestClient(create_app(lake, layer))
    asker = client.app.state.mesh.new_asker(Caller("test:api", "analyst"))
    assert isinstance(asker.duckdb, ResourceConnections)
    assert isinstance(asker.duckdb.resource, DuckDBResource)
    answer = client.post("/api/ask", json={"question": "How many stores are there?"})
    assert answer.status_code == 200 and answer.json()["status"] == "answered"


def test_a_semantic_query_runs_the_same_through_a_duckdb_resource(lake, layer):
    # As a domain's insights product runs it, with its location's resource.
    query = {"metrics": ["revenue"], "dimensions": ["region"], "order_by": ["region"]}
    plain = run_query(layer, lake, query, IN_MEMORY)
    assert plain.height > 1
    # A sum of floats may differ in its last bit with the order threads add it in.
    assert_frame_equal(run_query(layer, lake, query, DuckDBResource(database=":memory:")), plain)
