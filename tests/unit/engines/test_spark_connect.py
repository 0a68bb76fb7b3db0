"""The Spark engine over Spark Connect: a real Connect server in its own process (from
pyspark's own jars), the engine as a gRPC client with no JVM, RDD or SparkContext."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.engines.spark import write_delta
from dagster_project.engines.spark_resource import SparkResource
from dagster_project.lake.storage import Lake
from tests.spark_mesh import (
    FAST_CONF,
    assert_same_products,
    build,
    connect_server,
    two_days_of_daily_sales,
)


@pytest.fixture(scope="module")
def connect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkResource]:
    log = tmp_path_factory.mktemp("spark-connect") / "server.log"
    try:
        with connect_server(log) as url:
            resource = SparkResource(remote=url, shuffle_partitions=2, conf=FAST_CONF)
            yield resource
            resource.get_session().stop()
    finally:
        # pyspark marks a process that made a Connect session as Connect-only; the
        # classic-session tests that run after this module need it unmarked.
        os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)


def test_the_session_is_a_spark_connect_client(connect: SparkResource) -> None:
    session = connect.get_session()
    assert type(session).__module__ == "pyspark.sql.connect.session"
    assert session.conf.get("spark.sql.session.timeZone") == "UTC"  # runtime settings apply
    assert session.range(3).count() == 3


def test_sales_products_over_spark_connect_equal_the_local_engine(
    tmp_path: Path,
    local_sales: Path,
    connect: SparkResource,
    monkeypatch: pytest.MonkeyPatch,
    demo_contracts: dict[str, Contract],
) -> None:
    """Landing (Parquet, CSV, JSON lines; validation and imputation), the daily_sales
    transform, partition-overwrite writes and delta-rs commits, all through Connect."""
    on_connect = build(tmp_path, "spark", connect, monkeypatch, references_from=local_sales)
    local = Lake(MeshSettings(home=str(local_sales)))
    keys = ("sales/stores", "sales/order_lines", "sales/daily_sales")
    assert_same_products(local, on_connect, demo_contracts, keys)
    folder = Path(on_connect.uri("sales/order_lines"))
    assert not list(folder.rglob("_SUCCESS"))  # no committer markers in the table folder


def test_a_partitioned_merge_over_spark_connect_rewrites_only_touched_days(
    tmp_path: Path, connect: SparkResource, demo_contracts: dict[str, Contract]
) -> None:
    daily = demo_contracts["sales/daily_sales"]
    rows = two_days_of_daily_sales()
    session, lake = connect.get_session(), Lake(MeshSettings(home=str(tmp_path)))
    write_delta(lake, daily, session.createDataFrame(rows.to_arrow()))
    day_one = _files(lake, daily.key, "2025-03-01")
    change = rows.filter(pl.col("order_date") == date(2025, 3, 2)).with_columns(units=pl.lit(7))
    write_delta(lake, daily, session.createDataFrame(change.to_arrow()), mode="merge")
    assert _files(lake, daily.key, "2025-03-01") == day_one
    assert lake.read(daily.key).sort("order_date")["units"].to_list() == [3, 7]


def _files(lake: Lake, key: str, day: str) -> list[str]:
    """The day's data files in the table's current snapshot (from the Delta log)."""
    actions = pa.table(lake.table(key).get_add_actions(flatten=True)).to_pylist()
    return sorted(a["path"] for a in actions if str(a["partition.order_date"]) == day)
