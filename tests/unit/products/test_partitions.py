"""Daily partitions per product: the start comes from the contract (`partitionStart`) or
the data (the first landed day); past and future starts both work, derived products
inherit their inputs' earliest start, and rows outside a run's days fail before the write."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import yaml

from dagster_project import domain_definitions, landing
from dagster_project.app.refresh import refresh
from dagster_project.core.contracts import Contract, ContractError, load_contracts
from dagster_project.core.settings import PARTITION_START, MeshSettings
from dagster_project.lake.landing import landing_files
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import Lake
from dagster_project.products.product import derived
from tests.factories import column, contract_document

EVENTS = [
    column("event_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
    column("event_date", "date", required=True, partitioned=True, partitionKeyPosition=1),
    column("amount", "number"),
]
DAILY = [
    column("event_date", "date", primaryKey=True, primaryKeyPosition=1, partitioned=True),
    column("events", "integer", required=True),
]


def write_contract(
    folder: Path, product: str, properties: list[dict[str, Any]], start: str | None = None, **kw
) -> Contract:
    document = contract_document(properties, domain="shop", product=product, **kw)
    if start is not None:
        document["schema"][0]["customProperties"] = [{"property": "partitionStart", "value": start}]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{product}.odcs.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return Contract(document, str(path))


def land(settings: MeshSettings, product: str, day: date, ids: list[int]) -> None:
    frame = pl.DataFrame(
        {"event_id": ids, "event_date": [day] * len(ids), "amount": [1.0] * len(ids)}
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    uri = f"{settings.landing_uri('shop', product)}/{day.isoformat()}.parquet"
    settings.files.write_bytes(uri, buffer.getvalue())


def daily_counts(events: pl.LazyFrame) -> pl.LazyFrame:
    return events.group_by("event_date").agg(events=pl.len().cast(pl.Int64))


def assets_of(defs: dg.Definitions) -> dict[str, dg.AssetsDefinition]:
    return {
        k.to_user_string(): a
        for a in defs.assets or []
        if isinstance(a, dg.AssetsDefinition)
        for k in a.keys
    }


def start_of(asset: dg.AssetsDefinition) -> date:
    return asset.partitions_def.start.date()


def test_a_declared_past_start_builds_days_from_2019(tmp_path, mesh_home):
    contracts = tmp_path / "contracts"
    # merge on the key, not partition_overwrite: partitioned all the same
    write_contract(contracts, "events", EVENTS, start="2019-01-01", write_mode="merge")
    land(mesh_home, "events", date(2019, 1, 2), [1, 2])
    defs = domain_definitions("shop", [landing("events")], contracts=contracts)
    asset = assets_of(defs)["shop/events"]
    assert start_of(asset) == date(2019, 1, 1)
    result = dg.materialize(
        [asset], partition_key="2019-01-02", resources={"mesh": MeshResource(home=mesh_home.home)}
    )
    assert result.success
    frame = Lake(mesh_home).read("shop/events")
    assert frame["event_date"].to_list() == [date(2019, 1, 2)] * 2


def test_without_a_declared_start_the_first_landed_day_is_the_start(tmp_path, mesh_home):
    contracts = tmp_path / "contracts"
    write_contract(contracts, "events", EVENTS, write_mode="partition_overwrite")
    land(mesh_home, "events", date(2019, 3, 5), [1])
    land(mesh_home, "events", date(2019, 3, 7), [2])
    defs = domain_definitions("shop", [landing("events")], contracts=contracts)
    assert start_of(assets_of(defs)["shop/events"]) == date(2019, 3, 5)


def test_a_start_never_moves_past_the_platform_default(tmp_path, mesh_home):
    """Recent data (or none) keeps the default start, so days landed after the location
    loaded still have partitions."""
    contracts = tmp_path / "contracts"
    write_contract(contracts, "events", EVENTS, write_mode="partition_overwrite")
    land(mesh_home, "events", date(2025, 3, 5), [1])
    defs = domain_definitions("shop", [landing("events")], contracts=contracts)
    assert start_of(assets_of(defs)["shop/events"]) == PARTITION_START


def test_a_future_start_loads_with_no_partitions_yet(tmp_path, mesh_home):
    contracts = tmp_path / "contracts"
    write_contract(
        contracts, "events", EVENTS, start="2999-01-01", write_mode="partition_overwrite"
    )
    defs = domain_definitions("shop", [landing("events")], contracts=contracts)
    asset = assets_of(defs)["shop/events"]
    assert start_of(asset) == date(2999, 1, 1)
    assert asset.partitions_def.get_partition_keys() == []
    land(mesh_home, "events", date(2025, 3, 5), [1])
    contract = load_contracts(contracts)["events"]
    report = refresh([asset], [contract], settings=mesh_home, resources=defs.resources)
    assert report.success and not report.runs  # skipped, not failed
    assert "no day of 2025-03-05 .. 2025-03-05" in report.skipped["shop/events"]


def test_a_derived_product_inherits_its_inputs_earliest_start(tmp_path, mesh_home):
    contracts = tmp_path / "contracts"
    write_contract(
        contracts, "events", EVENTS, start="2019-01-01", write_mode="partition_overwrite"
    )
    write_contract(contracts, "daily", DAILY, write_mode="partition_overwrite")
    write_contract(contracts, "late_daily", DAILY, start="2021-06-01", write_mode="merge")
    products = [
        landing("events"),
        derived("daily", daily_counts, "events"),
        derived("late_daily", daily_counts, "events"),  # its own contract's start wins
    ]
    assets = assets_of(domain_definitions("shop", products, contracts=contracts))
    assert start_of(assets["shop/daily"]) == date(2019, 1, 1)
    assert start_of(assets["shop/late_daily"]) == date(2021, 6, 1)


@pytest.mark.parametrize("value", ["2019-13-01", "soon", 2019])
def test_an_unusable_start_names_the_field(value):
    document = contract_document(EVENTS, domain="shop", product="events")
    document["schema"][0]["customProperties"] = [{"property": "partitionStart", "value": value}]
    with pytest.raises(ContractError, match=r"partitionStart.*YYYY-MM-DD"):
        Contract(document, "events.odcs.yaml")


def test_rows_outside_the_runs_days_fail_before_the_write(tmp_path, mesh_home):
    contracts = tmp_path / "contracts"
    write_contract(
        contracts, "events", EVENTS, start="2019-01-01", write_mode="partition_overwrite"
    )
    write_contract(contracts, "daily", DAILY, write_mode="partition_overwrite")
    land(mesh_home, "events", date(2019, 1, 2), [1])

    def shifted(events: pl.LazyFrame) -> pl.LazyFrame:  # a transform that moves days
        return daily_counts(events).with_columns(pl.col("event_date") - pl.duration(days=400))

    defs = domain_definitions(
        "shop", [landing("events"), derived("daily", shifted, "events")], contracts=contracts
    )
    assets = assets_of(defs)
    resources = {"mesh": MeshResource(home=mesh_home.home)}
    assert dg.materialize([assets["shop/events"]], partition_key="2019-01-02", resources=resources)
    with pytest.raises(dg.Failure, match=r"1 row\(s\) with event_date outside .*2019-01-02"):
        dg.materialize([assets["shop/daily"]], partition_key="2019-01-02", resources=resources)
    assert not Lake(mesh_home).exists("shop/daily")


def test_a_sensor_quarantines_a_day_before_the_declared_start(tmp_path, mesh_home):
    contracts = tmp_path / "contracts"
    write_contract(
        contracts, "events", EVENTS, start="2020-01-01", write_mode="partition_overwrite"
    )
    defs = domain_definitions("shop", [landing("events")], contracts=contracts)
    land(mesh_home, "events", date(2019, 12, 31), [1])
    land(mesh_home, "events", date(2020, 1, 1), [2])
    sensor = defs.resolve_sensor_def("shop_landing_sensor")
    with dg.DagsterInstance.ephemeral() as instance:
        first = sensor(
            dg.build_sensor_context(
                resources={"mesh": MeshResource(home=mesh_home.home)}, instance=instance
            )
        )  # a new file is judged on the tick after the one that first saw it
        result = sensor(
            dg.build_sensor_context(
                cursor=first.cursor,
                resources={"mesh": MeshResource(home=mesh_home.home)},
                instance=instance,
            )
        )
    assert [r.partition_key for r in result.run_requests] == ["2020-01-01"]
    reasons = [e.metadata["reason"].value for e in result.asset_events]
    assert len(reasons) == 1 and "before partitionStart 2020-01-01" in reasons[0]
    assert [f.day for f in landing_files(mesh_home, "shop/events")] == [date(2020, 1, 1)]


def test_refresh_splits_runs_by_start_and_skips_days_before_a_start(tmp_path, mesh_home):
    """Products with different starts cannot share a run; a day before a product's start
    is skipped for that product, not failed."""
    contracts = tmp_path / "contracts"
    write_contract(
        contracts, "events", EVENTS, start="2019-01-01", write_mode="partition_overwrite"
    )
    write_contract(
        contracts, "recent", EVENTS, start="2019-01-03", write_mode="partition_overwrite"
    )
    write_contract(contracts, "daily", DAILY, write_mode="partition_overwrite")
    for day in (date(2019, 1, 1), date(2019, 1, 2), date(2019, 1, 3)):
        land(mesh_home, "events", day, [day.day])
        land(mesh_home, "recent", day, [day.day])
    products = [landing("events"), landing("recent"), derived("daily", daily_counts, "recent")]
    defs = domain_definitions("shop", products, contracts=contracts)
    assets = list(assets_of(defs).values())
    with dg.DagsterInstance.ephemeral() as instance:
        report = refresh(
            assets,
            list(load_contracts(contracts).values()),
            settings=mesh_home,
            instance=instance,
            resources=defs.resources,
        )
    assert report.success, report
    assert sorted(map(sorted, report.waves)) == [["shop/daily", "shop/recent"], ["shop/events"]]
    lake = Lake(mesh_home)
    assert lake.read("shop/events").height == 3
    assert lake.read("shop/recent")["event_date"].to_list() == [date(2019, 1, 3)]
    assert lake.read("shop/daily")["events"].to_list() == [1]
