"""The Spark engine: sales products built on Spark equal those built locally."""

from __future__ import annotations

import importlib
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
import pytest

from dagster_project.contracts import Contract
from dagster_project.engines import engine_for
from dagster_project.engines.resources import SparkResource
from dagster_project.engines.spark import read_delta, write_delta
from dagster_project.engines.spark_products import read_landing
from dagster_project.resources import MeshResource
from dagster_project.settings import MeshSettings
from dagster_project.simulator import simulate
from dagster_project.storage import DateWindow, Lake

DAYS = ("2025-03-01", "2025-03-02")
PRODUCTS = ("sales/stores", "sales/order_lines", "sales/daily_sales")


@pytest.fixture(scope="module")
def spark() -> SparkResource:
    # Tiny data: compiling generated code and adaptive planning cost more than they save.
    fast = {"spark.sql.codegen.wholeStage": "false", "spark.sql.adaptive.enabled": "false"}
    resource = SparkResource(master="local[2]", shuffle_partitions=2, conf=fast)
    yield resource
    resource.get_session().stop()


def _sales_assets(monkeypatch: pytest.MonkeyPatch, engine: str) -> list[dg.AssetsDefinition]:
    monkeypatch.setenv("MESH_ENGINE_SALES", engine)
    import domains.sales.definitions as sales

    defs = importlib.reload(sales).defs  # the engine is read when the location loads
    monkeypatch.delenv("MESH_ENGINE_SALES")
    importlib.reload(sales)  # other tests import the location as configured (local)
    return list(defs.assets)


def _build(
    home: Path,
    engine: str,
    spark: SparkResource,
    monkeypatch: pytest.MonkeyPatch,
    references_from: Path | None = None,
) -> Lake:
    """Land DAYS of simulated data in `home` and build the sales products on `engine`;
    the order lines' foreign-key targets are built locally or copied from another home."""
    monkeypatch.setenv("MESH_HOME", str(home))
    settings = MeshSettings(home=str(home))
    simulate(settings, days=2, scale=1500, start=date(2025, 3, 1), seed=7)
    assets = _sales_assets(monkeypatch, engine)
    resources = {"mesh": MeshResource(home=str(home)), "spark": spark}
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
    return Lake(settings)


def _sorted(lake: Lake, contract: Contract) -> pl.DataFrame:
    return lake.read(contract.key).sort(contract.primary_key)


def test_sales_products_are_identical_on_both_engines(
    tmp_path: Path,
    spark: SparkResource,
    monkeypatch: pytest.MonkeyPatch,
    demo_contracts: dict[str, Contract],
) -> None:
    local = _build(tmp_path / "local", "local", spark, monkeypatch)
    on_spark = _build(tmp_path / "spark", "spark", spark, monkeypatch, tmp_path / "local")
    for key in PRODUCTS:
        contract = demo_contracts[key]
        expected, actual = _sorted(local, contract), _sorted(on_spark, contract)
        assert actual.height > 0
        assert actual.schema == expected.schema, key
        for column in expected.columns:
            assert actual[column].equals(expected[column]), (key, column)
        delta_schema = pa.schema(local.table(key).schema().to_arrow())
        assert pa.schema(on_spark.table(key).schema().to_arrow()) == delta_schema, key
        assert on_spark.partition_columns(key) == local.partition_columns(key), key
        assert on_spark.info(key).rows == expected.height  # row counts from the Delta log
    commit = on_spark.table("sales/daily_sales").history(1)[0]
    assert commit["mesh.engine"] == "spark"


def test_engine_comes_from_the_contract_or_the_domain(
    monkeypatch: pytest.MonkeyPatch, demo_contracts: dict[str, Contract]
) -> None:
    contract = demo_contracts["sales/daily_sales"]
    monkeypatch.delenv("MESH_ENGINE_SALES", raising=False)
    assert engine_for(contract) == "local"
    monkeypatch.setenv("MESH_ENGINE_SALES", "spark")
    assert engine_for(contract) == "spark"
    monkeypatch.setenv("MESH_ENGINE_SALES", "dask")
    with pytest.raises(ValueError, match="engine must be one of"):
        engine_for(contract)


def test_write_modes_match_the_local_engine(
    tmp_path: Path, spark: SparkResource, demo_contracts: dict[str, Contract]
) -> None:
    """Merge (later rows win), partition overwrite of a window, and reads of the
    snapshot only (replaced files stay in the folder until vacuum)."""
    session = spark.get_session()
    stores = demo_contracts["sales/stores"]
    daily = demo_contracts["sales/daily_sales"]
    first = pl.DataFrame(
        {
            "store_id": [1, 2],
            "store_name": ["A", "B"],
            "city": ["X", "Y"],
            "region": ["North", "South"],
        }
    )
    second = pl.DataFrame(
        {
            "store_id": [2, 3],
            "store_name": ["B2", "C"],
            "city": ["Y", "Z"],
            "region": ["South", "East"],
        }
    )
    days = pl.DataFrame(
        {
            "order_date": [date(2025, 3, 1), date(2025, 3, 2)],
            "store_id": [1, 1],
            "product_id": [5, 5],
            "units": [3, 4],
            "net_revenue": [9.5, 12.0],
            "order_count": [1, 2],
        }
    )
    replace_day_two = days.filter(pl.col("order_date") == date(2025, 3, 2)).with_columns(
        units=pl.lit(40)
    )
    window = DateWindow(date(2025, 3, 2), date(2025, 3, 2))
    lakes = {name: Lake(MeshSettings(home=str(tmp_path / name))) for name in ("local", "spark")}
    for frame in (first, second):
        lakes["local"].write(stores, frame)
        write_delta(lakes["spark"], stores, session.createDataFrame(frame.to_pandas()))
    lakes["local"].write(daily, days)
    lakes["local"].write(daily, replace_day_two, window=window)
    write_delta(lakes["spark"], daily, session.createDataFrame(days.to_pandas()))
    write_delta(
        lakes["spark"], daily, session.createDataFrame(replace_day_two.to_pandas()), window=window
    )
    for contract in (stores, daily):
        expected = _sorted(lakes["local"], contract)
        assert _sorted(lakes["spark"], contract).equals(expected)
        snapshot = read_delta(session, lakes["spark"], contract.key).toPandas()
        assert len(snapshot) == expected.height
    assert _sorted(lakes["spark"], stores)["store_name"].to_list() == ["A", "B2", "C"]
    only_day_two = read_delta(session, lakes["spark"], daily.key, window=window).collect()
    assert [r["units"] for r in only_day_two] == [40]


def test_landing_on_spark_quarantines_bad_files_and_keeps_the_latest_row(
    tmp_path: Path, spark: SparkResource, demo_contracts: dict[str, Contract]
) -> None:
    settings = MeshSettings(home=str(tmp_path))
    stores = demo_contracts["sales/stores"]
    folder = settings.landing_uri("sales", "stores")
    row = {"store_name": "A", "city": "X", "region": "North"}
    settings.makedirs(folder)
    pl.DataFrame([{"store_id": 1, **row}, {"store_id": 2, **row}]).write_parquet(
        f"{folder}/2025-03-01.parquet"
    )
    later = {"store_id": 1, **row, "store_name": "A renamed"}
    pl.DataFrame([later]).write_csv(f"{folder}/2025-03-02.csv")
    pl.DataFrame(
        [{"store_id": None, **row}], schema_overrides={"store_id": pl.Int64}
    ).write_parquet(f"{folder}/2025-03-03.parquet")
    pl.DataFrame([{"store_id": 3, **row, "colour": "red"}]).write_csv(f"{folder}/2025-03-04.csv")
    frame, loaded, quarantined = read_landing(spark.get_session(), settings, stores, None)
    assert [f.name for f in loaded] == ["2025-03-01.parquet", "2025-03-02.csv"]
    assert "empty primary key" in quarantined["2025-03-03.parquet"]
    assert "columns not in the contract: colour" in quarantined["2025-03-04.csv"]
    assert settings.exists(f"{settings.quarantine_uri('sales')}/stores/2025-03-04.csv")
    lake = Lake(settings)
    write_delta(lake, stores, frame)
    names = lake.read(stores.key).sort("store_id")["store_name"].to_list()
    assert names == ["A renamed", "A"]  # the later file wins on its key
