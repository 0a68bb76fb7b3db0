"""The query worker: what a job carries, and the connection its worker opens ahead."""

from __future__ import annotations

import pytest
from dagster_duckdb import DuckDBResource

from dagster_project.ask import Asker
from dagster_project.ask.limits import AskError
from dagster_project.ask.resources import ResourceConnections
from dagster_project.ask.worker import named_in
from dagster_project.metadata.semantics import load_semantic_layer
from tests.small_mesh import write_small_mesh


def test_a_job_carries_the_contracts_of_the_products_its_sql_names(demo_contracts):
    sql = (
        'SELECT s.region, SUM(o.net_amount) FROM "SALES"."Order_Lines" o '
        "JOIN sales.stores s USING (store_id)"
    )
    assert set(named_in(sql, demo_contracts)) == {"sales/order_lines", "sales/stores"}
    assert named_in("SELECT 1", demo_contracts) == {}


def test_a_misspelt_product_is_still_told_its_closest_names(lake, demo_contracts):
    """The worker carries only the named products' contracts, but its guard knows them all."""
    write_small_mesh(lake, demo_contracts)
    asker = Asker(lake, load_semantic_layer(), provider="offline")
    columns, rows, _ = asker.run_sql("SELECT COUNT(*) AS n FROM sales.stores")
    assert columns == ["n"] and rows[0][0] > 0
    with pytest.raises(AskError, match=r"did you mean sales\.stores"):
        asker.run_sql("SELECT COUNT(*) FROM sales.store")


def test_a_connection_the_worker_cannot_open_ahead_is_the_jobs_refusal(lake, demo_contracts):
    write_small_mesh(lake, demo_contracts)
    layer = load_semantic_layer()
    broken = DuckDBResource(database=":memory:", connection_config={"no_such_setting": 1})
    asker = Asker(lake, layer, provider="offline", duckdb=ResourceConnections.of(broken))
    for _ in range(2):  # the first worker starts with it, the next is the spare
        with pytest.raises(AskError, match="no_such_setting"):
            asker.run_sql("SELECT COUNT(*) FROM sales.stores")
