"""The Spark engine: sales products built on Spark equal those built locally."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
import pytest

from dagster_project.assembly.locations import product_assets
from dagster_project.checks.families import FAMILIES
from dagster_project.checks.rules import ContractRules
from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.engines import engine_for
from dagster_project.engines.spark import read_delta, write_delta
from dagster_project.engines.spark_resource import SparkResource
from dagster_project.lake.landing import load_landing
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import DateWindow, Lake, enforce_schema, to_arrow
from dagster_project.products.builder import build_product_asset
from dagster_project.products.product import CheckFamily, Product, screen_of
from dagster_project.products.spark import read_landing
from demo.simulator import simulate
from tests.factories import column, contract_document
from tests.spark_mesh import (
    FAST_CONF,
    PRODUCTS,
    assert_same_products,
    build,
    sales_assets,
    sorted_rows,
    two_days_of_daily_sales,
)

DAY_ONE = date(2025, 3, 1)


@pytest.fixture(scope="module")
def spark() -> SparkResource:
    resource = SparkResource(master="local[2]", shuffle_partitions=2, conf=FAST_CONF)
    yield resource
    resource.get_session().stop()


def test_sales_products_are_identical_on_both_engines(
    tmp_path: Path,
    local_sales: Path,
    spark: SparkResource,
    monkeypatch: pytest.MonkeyPatch,
    demo_contracts: dict[str, Contract],
) -> None:
    """From Parquet, CSV and JSON lines landing files, with unit prices missing on 3% of
    the order lines: the imputation model fills the same values on both engines."""
    on_spark = build(tmp_path, "spark", spark, monkeypatch, references_from=local_sales)
    local = Lake(MeshSettings(home=str(local_sales)))
    assert_same_products(local, on_spark, demo_contracts, PRODUCTS)
    lines = on_spark.read("sales/order_lines")
    assert lines["unit_price_imputed"].sum() > 0
    assert lines["unit_price"].null_count() == 0


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
    days = two_days_of_daily_sales()
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
        expected = sorted_rows(lakes["local"], contract)
        assert sorted_rows(lakes["spark"], contract).equals(expected)
        snapshot = read_delta(session, lakes["spark"], contract.key).toPandas()
        assert len(snapshot) == expected.height
    assert sorted_rows(lakes["spark"], stores)["store_name"].to_list() == ["A", "B2", "C"]
    only_day_two = read_delta(session, lakes["spark"], daily.key, window=window).collect()
    assert [r["units"] for r in only_day_two] == [40]


def _land_stores(folder: str) -> None:
    """Good and bad landing files of sales/stores, one per day."""
    row = {"store_name": "A", "city": "X", "region": "North"}
    pl.DataFrame([{"store_id": 1, **row}, {"store_id": 2, **row}]).write_parquet(
        f"{folder}/2025-03-01.parquet"
    )
    pl.DataFrame([{"store_id": 1, **row, "store_name": "A renamed"}]).write_ndjson(
        f"{folder}/2025-03-02.jsonl"
    )
    Path(f"{folder}/2025-03-03.jsonl").write_text('{"store_id": 4, "store_name": \n')
    Path(f"{folder}/2025-03-04.csv").write_text("store_id,store_name,city,region\nabc,B,Y,S\n")
    pl.DataFrame(
        [{"store_id": None, **row}], schema_overrides={"store_id": pl.Int64}
    ).write_parquet(f"{folder}/2025-03-05.parquet")
    pl.DataFrame([{"store_id": 3, **row, "colour": "red"}]).write_csv(f"{folder}/2025-03-06.csv")
    Path(f"{folder}/2025-03-07.txt").write_text("store_id\n9\n")
    Path(f"{folder}/2025-03-08.ndjson").write_text("")
    # Text ids in Parquet: cast like the local engine does, not a failed Spark read.
    pl.DataFrame([{"store_id": "7", **row}]).write_parquet(f"{folder}/2025-03-09.parquet")
    # Only the required columns, so another CSV header: the optional ones are null.
    pl.DataFrame([{"store_id": 8, **row, "store_name": "H"}]).write_csv(f"{folder}/2025-03-10.csv")


def test_landing_on_spark_validates_and_quarantines_like_the_local_engine(
    tmp_path: Path, spark: SparkResource, demo_contracts: dict[str, Contract]
) -> None:
    """Every format the local engine reads (Parquet, CSV, JSON lines), and malformed
    files of each — unparsable, wrong types, empty keys, unknown columns, unsupported,
    empty — quarantined with the local engine's own reasons instead of failing the run;
    on a duplicate key the later file wins."""
    stores = demo_contracts["sales/stores"]
    homes = {name: MeshSettings(home=str(tmp_path / name)) for name in ("local", "spark")}
    for settings in homes.values():
        folder = settings.landing_uri("sales", "stores")
        settings.files.makedirs(folder)
        _land_stores(folder)
    expected = load_landing(homes["local"], stores)
    frame, loaded, load = read_landing(spark.get_session(), homes["spark"], stores, None)
    quarantined = load.quarantined
    assert quarantined == expected.quarantined
    assert set(quarantined) == {
        "2025-03-03.jsonl",
        "2025-03-04.csv",
        "2025-03-05.parquet",
        "2025-03-06.csv",
        "2025-03-07.txt",
        "2025-03-08.ndjson",
    }
    assert "unreadable ndjson file" in quarantined["2025-03-03.jsonl"]
    assert "could not parse `abc`" in quarantined["2025-03-04.csv"]
    assert "empty primary key" in quarantined["2025-03-05.parquet"]
    assert [f.name for f in loaded] == [f.name for f in expected.loaded]
    reason = homes["spark"].quarantine_uri("sales") + "/stores/2025-03-04.csv.reason.json"
    assert (
        json.loads(homes["spark"].files.read_text(reason))["reason"]
        == quarantined["2025-03-04.csv"]
    )
    lakes = {name: Lake(settings) for name, settings in homes.items()}
    lakes["local"].write(stores, expected.frame)
    write_delta(lakes["spark"], stores, frame)
    assert sorted_rows(lakes["spark"], stores).equals(sorted_rows(lakes["local"], stores))
    names = sorted_rows(lakes["spark"], stores)["store_name"].to_list()
    assert names == ["A renamed", "A", "A", "H"]  # the later file wins on its key


@pytest.mark.parametrize("mode", ["quarantine_file", "quarantine_rows"])
def test_landing_on_spark_screens_rows_like_the_local_engine(
    tmp_path: Path, spark: SparkResource, demo_contracts: dict[str, Contract], mode: str
) -> None:
    """Rows breaking a blocking rule (region outside its enum, a size of 0) never reach
    Spark: the file, or only those rows, are quarantined as on the local engine."""
    document = copy.deepcopy(demo_contracts["sales/stores"].document)
    document["schema"][0]["customProperties"] = [{"property": "onViolation", "value": mode}]
    stores = Contract(document, "<stores>")
    lake = Lake(MeshSettings(home=str(tmp_path / "local")))  # stores reference no product
    screen = screen_of(FAMILIES, lake, before_prepare=True)
    homes = {name: MeshSettings(home=str(tmp_path / name)) for name in ("local", "spark")}
    row = {"store_name": "A", "city": "X"}
    for settings in homes.values():
        folder = settings.landing_uri("sales", "stores")
        settings.files.makedirs(folder)
        pl.DataFrame([{"store_id": 1, **row, "region": "North"}]).write_csv(f"{folder}/a.csv")
        pl.DataFrame(
            [
                {"store_id": 2, **row, "region": "Mars", "size_sqm": 10.0},
                {"store_id": 3, **row, "region": "North", "size_sqm": 0.0},
                {"store_id": 4, **row, "region": "South", "size_sqm": 5.0},
            ]
        ).write_parquet(f"{folder}/b.parquet")
    expected = load_landing(homes["local"], stores, screen=screen)
    staging = homes["spark"].uri("staging", "test")
    frame, loaded, load = read_landing(
        spark.get_session(), homes["spark"], stores, None, screen=screen, staging=staging
    )
    assert (load.quarantined, load.rows_quarantined) == (
        expected.quarantined,
        expected.rows_quarantined,
    )
    ids = sorted(r["store_id"] for r in frame.select("store_id").collect())
    assert (
        ids == sorted(expected.frame["store_id"]) == ([1, 4] if mode == "quarantine_rows" else [1])
    )
    assert [f.name for f in loaded] == [f.name for f in expected.loaded]


def test_merge_of_a_partitioned_product_rewrites_only_the_days_its_keys_touch(
    tmp_path: Path, spark: SparkResource, demo_contracts: dict[str, Contract]
) -> None:
    """Order lines merged on their key (order_id, line_number), partitioned by day: a
    corrected line and a new line on day 2 and a line moved from day 3 to day 2 rewrite
    days 2 and 3 only (days 1 and 4 keep their files in the Delta log); the rows are
    the local engine's merge; replaying the same rows changes no row."""
    lines = demo_contracts["sales/order_lines"]
    simulate(MeshSettings(home=str(tmp_path / "sim")), days=4, scale=400, start=DAY_ONE, seed=3)
    folder = MeshSettings(home=str(tmp_path / "sim")).landing_uri("sales", "order_lines")
    first = enforce_schema(pl.read_parquet(f"{folder}/*.parquet"), lines)
    day = pl.col("order_date")
    day_two, day_three = DAY_ONE + timedelta(days=1), DAY_ONE + timedelta(days=2)
    corrected = first.filter(day == day_two).head(1).with_columns(quantity=pl.col("quantity") + 5)
    new = corrected.with_columns(order_id=pl.lit(10**9, pl.Int64))
    moved = first.filter(day == day_three).head(1).with_columns(order_date=pl.lit(day_two))
    change = pl.concat([corrected, new, moved])
    session = spark.get_session()
    lakes = {name: Lake(MeshSettings(home=str(tmp_path / name))) for name in ("local", "spark")}
    lakes["local"].write(lines, first, mode="merge")
    write_delta(lakes["spark"], lines, session.createDataFrame(to_arrow(first)), mode="merge")
    before = _day_files(lakes["spark"], lines.key)
    lakes["local"].write(lines, change, mode="merge")
    write_delta(lakes["spark"], lines, session.createDataFrame(to_arrow(change)), mode="merge")
    after = _day_files(lakes["spark"], lines.key)
    expected = sorted_rows(lakes["local"], lines)
    assert sorted_rows(lakes["spark"], lines).equals(expected)
    assert expected.height == first.height + 1
    untouched = {DAY_ONE, DAY_ONE + timedelta(days=3)}
    assert {d: after[d] for d in untouched} == {d: before[d] for d in untouched}
    assert after[day_two].isdisjoint(before[day_two])
    assert after[day_three].isdisjoint(before[day_three])
    write_delta(lakes["spark"], lines, session.createDataFrame(to_arrow(change)), mode="merge")
    assert sorted_rows(lakes["spark"], lines).equals(expected)  # a replay changes nothing
    replayed = _day_files(lakes["spark"], lines.key)
    assert {d: replayed[d] for d in untouched} == {d: before[d] for d in untouched}


def _day_files(lake: Lake, key: str) -> dict[date, set[str]]:
    """Data files of the table's current snapshot per day (from the Delta log)."""
    files: dict[date, set[str]] = {}
    for action in pa.table(lake.table(key).get_add_actions(flatten=True)).to_pylist():
        files.setdefault(action["partition.order_date"], set()).add(action["path"])
    return files


def test_a_corrected_file_of_a_merged_product_on_spark_replaces_exactly_its_rows(
    tmp_path: Path, spark: SparkResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on the local engine (tests/faults/test_replays.py): the rows a corrected file no
    longer brings are deleted, its changed rows updated, the other files' rows kept."""
    monkeypatch.setenv("MESH_HOME", str(tmp_path))
    settings = MeshSettings(home=str(tmp_path))
    folder = settings.landing_uri("sales", "stores")
    header = "store_id,store_name,city,region,opened_date,size_sqm\n"
    settings.files.write_text(
        f"{folder}/a.csv", header + "1,A,Porto,North,2020-01-01,10\n2,B,Lyon,South,2020-01-01,20\n"
    )
    settings.files.write_text(f"{folder}/b.csv", header + "3,C,Leeds,East,2020-01-01,30\n")
    (stores,) = [a for a in sales_assets(monkeypatch, "spark") if a.key.path[-1] == "stores"]
    resources = {"mesh": MeshResource(home=str(tmp_path)), "spark": spark}
    assert dg.materialize([stores], resources=resources).success
    settings.files.write_text(f"{folder}/a.csv", header + "1,A fixed,Porto,North,2020-01-01,10\n")
    run = dg.materialize([stores], resources=resources)
    assert run.success
    metadata = run.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["rows_retracted"].value == 1
    rows = Lake(settings).read("sales/stores").sort("store_id")
    assert rows.select("store_id", "store_name").rows() == [(1, "A fixed"), (3, "C")]


def test_a_derived_product_on_spark_breaking_a_rule_is_refused_before_its_write(
    tmp_path: Path, spark: SparkResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on the local engine: the transform's rows are judged before anything is written
    (staged, then screened by the same refusal); a good run writes the staged rows."""
    monkeypatch.setenv("MESH_HOME", str(tmp_path))
    lake = Lake(MeshSettings(home=str(tmp_path)))
    weights = [column("widget_id", "integer", primaryKey=True, primaryKeyPosition=1)]
    raw = Contract(contract_document([*weights, column("weight", "number")], product="raw"), "<>")
    lake.write(raw, pl.DataFrame({"widget_id": [1, 2], "weight": [1.0, 2.0]}))

    def heavy(maximum: float) -> dg.AssetsDefinition:
        bounded = column("weight", "number", logicalTypeOptions={"maximum": maximum})
        document = contract_document([*weights, bounded], product="heavy")
        document["schema"][0]["customProperties"] = [{"property": "engine", "value": "spark"}]
        doubled = Product(
            "heavy",
            transform=lambda r: r.with_columns(weight=pl.col("weight") * 2),
            inputs=("shop/raw",),
            spark=lambda r: r.withColumn("weight", r["weight"] * 2),
            contract=Contract(document, "<heavy>"),
        )
        return product_assets([doubled])[0]

    resources = {"mesh": MeshResource(home=str(tmp_path)), "spark": spark}
    refused = dg.materialize([heavy(3.0)], resources=resources, raise_on_error=False)
    assert not refused.success and not lake.exists("shop/heavy")
    (failure,) = [e for e in refused.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "nothing written, 1 row(s) break" in message and "range on weight" in message
    assert not list((tmp_path / "staging").rglob("*.parquet"))  # the staged rows are gone
    assert dg.materialize([heavy(4.0)], resources=resources).success
    assert lake.read("shop/heavy").sort("widget_id")["weight"].to_list() == [2.0, 4.0]


def test_a_partition_overwrite_on_spark_replaces_only_the_days_given(
    tmp_path: Path, spark: SparkResource, demo_contracts: dict[str, Contract]
) -> None:
    """A window of two days whose second day has no good file left: only the first day is
    replaced; with no day left nothing is written (the table keeps its version)."""
    session, daily = spark.get_session(), demo_contracts["sales/daily_sales"]
    lake = Lake(MeshSettings(home=str(tmp_path)))
    days = two_days_of_daily_sales()
    write_delta(lake, daily, session.createDataFrame(days.to_pandas()))
    window = DateWindow(date(2025, 3, 1), date(2025, 3, 2))
    day_one = days.filter(pl.col("order_date") == date(2025, 3, 1)).with_columns(units=pl.lit(9))
    frame = session.createDataFrame(day_one.to_pandas())
    write_delta(lake, daily, frame, window=window, days={date(2025, 3, 1)})
    assert sorted_rows(lake, daily)["units"].to_list() == [9, 4]  # day two kept
    version = lake.info(daily.key).version
    empty = session.createDataFrame(day_one.clear().to_pandas(), frame.schema)
    write_delta(lake, daily, empty, window=window, days=set())
    assert lake.info(daily.key).version == version


def test_a_landing_null_left_unfilled_on_spark_is_refused_before_the_write(
    tmp_path: Path, spark: SparkResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A required column a family fills is not screened in the files; a null its
    `prepare_spark` leaves fails the run before the write, as on the local engine."""

    class LeavesGaps(CheckFamily):
        def fills(self, contract: Contract) -> set[str]:
            return {"widget_name"}

    monkeypatch.setenv("MESH_HOME", str(tmp_path))
    settings = MeshSettings(home=str(tmp_path))
    document = contract_document()
    document["schema"][0]["customProperties"] = [{"property": "engine", "value": "spark"}]
    contract = Contract(document, "<widgets>")
    folder = settings.landing_uri("shop", "widgets")
    settings.files.write_text(f"{folder}/a.csv", "widget_id,widget_name\n1,bolt\n2,\n")
    asset = build_product_asset(contract, Product("widgets"), [ContractRules(), LeavesGaps()])
    resources = {"mesh": MeshResource(home=str(tmp_path)), "spark": spark}
    result = dg.materialize([asset], resources=resources, raise_on_error=False)
    assert not result.success and not Lake(settings).exists("shop/widgets")
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "not_null on widget_name: 1 row(s), e.g. [2]" in failure.step_failure_data.error.message


def test_spark_reads_the_utc_days_of_a_timestamp_partitioned_input(
    tmp_path: Path, spark: SparkResource, make_contract
) -> None:
    """A product the local engine partitions by a timestamp, read on Spark for a window:
    the rows of those days (23:59:59 in, midnight of the next day out); Spark refuses to
    write such a product."""
    hourly = make_contract(
        [
            column("origin", required=True),
            column("time_hour", "timestamp", required=True, partitioned=True),
        ],
        domain="weather",
        product="hourly",
        write_mode="partition_overwrite",
    )
    lake = Lake(MeshSettings(home=str(tmp_path)))
    times = [datetime(2013, 1, 1, 0), datetime(2013, 1, 1, 23, 59, 59), datetime(2013, 1, 2, 0)]
    lake.write(hourly, pl.DataFrame({"origin": ["JFK", "LGA", "EWR"], "time_hour": times}))
    session = spark.get_session()
    day_one = read_delta(
        session, lake, hourly.key, window=DateWindow(date(2013, 1, 1), date(2013, 1, 1))
    )
    assert sorted(r.origin for r in day_one.collect()) == ["JFK", "LGA"]
    day_two = read_delta(session, lake, hourly.key, days={date(2013, 1, 2)})
    assert [r.origin for r in day_two.collect()] == ["EWR"]
    with pytest.raises(ValueError, match="which the Spark engine cannot partition by"):
        write_delta(lake, hourly, day_one)
