"""Building the sales products on an engine, and a real Spark Connect server, for tests."""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
import pytest
from dagster_duckdb import DuckDBResource

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.engines.spark_resource import SparkResource
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import Lake
from demo.simulator import MissingSpec, simulate
from tests.servers import free_port

DAYS = ("2025-03-01", "2025-03-02")
PRODUCTS = ("sales/stores", "sales/order_lines", "sales/daily_sales")
# Tiny data: compiling generated code and adaptive planning cost more than they save.
FAST_CONF = {"spark.sql.codegen.wholeStage": "false", "spark.sql.adaptive.enabled": "false"}
CONNECT_SERVER = "org.apache.spark.sql.connect.service.SparkConnectServer"


def sales_assets(monkeypatch: pytest.MonkeyPatch, engine: str) -> list[dg.AssetsDefinition]:
    monkeypatch.setenv("MESH_ENGINE_SALES", engine)
    import domains.sales.definitions as sales

    defs = importlib.reload(sales).defs  # the engine is read when the location loads
    monkeypatch.delenv("MESH_ENGINE_SALES")
    importlib.reload(sales)  # other tests import the location as configured (local)
    return list(defs.assets)


def reland(settings: MeshSettings, key: str, day: str, suffix: str) -> None:
    """Replace a landed Parquet file by the same rows as `.csv` or `.jsonl`."""
    folder = settings.landing_uri(*key.split("/"))
    frame = pl.read_parquet(f"{folder}/{day}.parquet")
    Path(f"{folder}/{day}.parquet").unlink()
    target = f"{folder}/{day}{suffix}"
    frame.write_csv(target) if suffix == ".csv" else frame.write_ndjson(target)


def mixed_formats(settings: MeshSettings) -> None:
    """The stores as CSV and a day of order lines as JSON lines: every landing format."""
    reland(settings, "sales/stores", "2025-03-01", ".csv")
    reland(settings, "sales/order_lines", "2025-03-02", ".jsonl")


def build(
    home: Path,
    engine: str,
    spark: SparkResource,
    monkeypatch: pytest.MonkeyPatch,
    references_from: Path | None = None,
) -> Lake:
    """Land DAYS of simulated data in `home` — Parquet, CSV and JSON lines files, unit
    prices missing on 3% of the order lines (imputed) — and build the sales products on
    `engine`; the order lines' foreign-key targets are built locally or copied."""
    monkeypatch.setenv("MESH_HOME", str(home))
    settings = MeshSettings(home=str(home))
    missing = MissingSpec(rate=0.03)
    simulate(settings, days=2, scale=1500, start=date(2025, 3, 1), seed=7, missing=missing)
    mixed_formats(settings)
    assets = sales_assets(monkeypatch, engine)
    resources = {
        "mesh": MeshResource(home=str(home)),
        "spark": spark,
        "duckdb": DuckDBResource(database=":memory:"),
    }
    wanted = {"sales/stores"}
    if references_from is None:
        from domains.customers.definitions import defs as customers
        from domains.inventory.definitions import defs as inventory

        assets_and_references = [*assets, *customers.assets, *inventory.assets]
        wanted |= {"inventory/products", "customers/customer_profiles"}
    else:
        for domain in ("inventory", "customers"):
            shutil.copytree(references_from / "lake" / domain, home / "lake" / domain)
        assets_and_references = assets
    references = [
        a
        for a in assets_and_references
        if isinstance(a, dg.AssetsDefinition) and a.key.to_user_string() in wanted
    ]
    assert dg.materialize(references, resources=resources).success
    daily = dg.materialize(
        assets,
        selection=["sales/order_lines", "sales/daily_sales"],
        resources=resources,
        tags={
            "dagster/asset_partition_range_start": DAYS[0],
            "dagster/asset_partition_range_end": DAYS[1],
        },
    )
    assert daily.success
    assert not list(home.glob("quarantine/**/*.reason.json"))  # every file was loaded
    return Lake(settings)


def sorted_rows(lake: Lake, contract: Contract) -> pl.DataFrame:
    return lake.read(contract.key).sort(contract.primary_key)


def assert_same_products(
    local: Lake, on_spark: Lake, contracts: dict[str, Contract], keys: tuple[str, ...]
) -> None:
    """Same rows, polars and Delta schemas, partition columns and logged row counts."""
    for key in keys:
        contract = contracts[key]
        expected, actual = sorted_rows(local, contract), sorted_rows(on_spark, contract)
        assert actual.height > 0
        assert actual.schema == expected.schema, key
        for column in expected.columns:
            assert actual[column].equals(expected[column]), (key, column)
        delta_schema = pa.schema(local.table(key).schema().to_arrow())
        assert pa.schema(on_spark.table(key).schema().to_arrow()) == delta_schema, key
        assert on_spark.partition_columns(key) == local.partition_columns(key), key
        assert on_spark.info(key).rows == expected.height  # row counts from the Delta log
        assert on_spark.table(key).history(1)[0]["mesh.engine"] == "spark"


@contextmanager
def connect_server(log: Path, master: str = "local[2]") -> Iterator[str]:
    """A Spark Connect server in its own process (pyspark's own jars, no download) on a
    free loopback port with a token; yields its `sc://` URL and stops it on exit."""
    import pyspark

    home = Path(pyspark.__file__).parent
    port, token = free_port(), uuid.uuid4().hex
    settings = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.connect.authenticate.token": token,
        "spark.ui.enabled": "false",
        **FAST_CONF,
    }
    command = [str(home / "bin" / "spark-submit"), "--master", master, "--class", CONNECT_SERVER]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if k != "SPARK_REMOTE"} | {"SPARK_HOME": str(home)}
    with log.open("w") as out:
        server = subprocess.Popen(
            [*command, "spark-internal"], env=env, stdout=out, stderr=out, start_new_session=True
        )
    try:
        _wait_for(port, server, log, timeout=120)
        yield f"sc://localhost:{port}/;token={token}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # its own process group: spark-submit's JVM
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _wait_for(port: int, server: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the Spark Connect server exited:\n{log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"no Spark Connect server on port {port} after {timeout:.0f} s")


def two_days_of_daily_sales() -> pl.DataFrame:
    """One store and product on 2025-03-01 and 03-02, as `sales/daily_sales` rows."""
    return pl.DataFrame(
        {
            "order_date": [date(2025, 3, 1), date(2025, 3, 2)],
            "store_id": [1, 1],
            "product_id": [5, 5],
            "units": [3, 4],
            "net_revenue": [9.5, 12.0],
            "order_count": [1, 2],
        }
    )
