"""A landing run also materializes the location's daily products derived from what landed,
as real Dagster runs on one instance: one run per landed day, no second run of the derived
product by automation, none after a quarantined file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from dagster_project import derived, domain_definitions, landing
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import Lake
from tests.factories import column, contract_document

D1 = date(2025, 3, 1)
VISITS, TOTALS, SITES = (dg.AssetKey(["shop", p]) for p in ("visits", "daily_totals", "sites"))


def daily_totals(visits: pl.LazyFrame) -> pl.LazyFrame:
    return visits.group_by("day").agg(pl.len().cast(pl.Int64).alias("visits"))


def _write(folder: Path, product: str, columns: list[dict], mode: str) -> None:
    document = contract_document(columns, product=product, write_mode=mode)
    (folder / f"{product}.odcs.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A `shop` location: daily `visits` land, `daily_totals` is derived from them,
    `sites` land unpartitioned; its Definitions, settings and a real instance."""
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "mesh"))
    folder = tmp_path / "shop" / "contracts"
    folder.mkdir(parents=True)
    day = column("day", "date", required=True, partitioned=True)
    key = column("visit_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True)
    seconds = column("seconds", "integer", logicalTypeOptions={"minimum": 0})
    _write(folder, "visits", [key, day, seconds], "partition_overwrite")
    totals = [{**day, "primaryKey": True, "primaryKeyPosition": 1}, column("visits", "integer")]
    _write(folder, "daily_totals", totals, "partition_overwrite")
    site = column("site_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True)
    _write(folder, "sites", [site], "merge")
    products = [
        landing("visits"),
        landing("sites"),
        derived("daily_totals", daily_totals, "shop/visits"),
    ]
    defs = domain_definitions("shop", products, contracts=folder)
    with dg.DagsterInstance.ephemeral() as instance:
        yield defs, MeshSettings(home=str(tmp_path / "mesh")), instance


def land(settings: MeshSettings, body: str) -> None:
    uri = f"{settings.landing_uri('shop', 'visits')}/{D1}.csv"
    settings.files.write_bytes(uri, body.encode())


def requests(defs: dg.Definitions, settings: MeshSettings, instance) -> list[dg.RunRequest]:
    """Two ticks of the landing sensor (a file is judged once it looks the same twice)."""
    sensor, cursor, found = defs.resolve_sensor_def("shop_landing_sensor"), None, []
    for _ in range(2):
        context = dg.build_sensor_context(
            cursor=cursor, resources={"mesh": MeshResource(home=settings.home)}, instance=instance
        )
        result = sensor(context)
        cursor, found = result.cursor, found + list(result.run_requests or [])
    return found


def launch(
    defs: dg.Definitions, settings: MeshSettings, request: dg.RunRequest, instance
) -> dg.ExecuteInProcessResult:
    """The run the daemon starts for `request`: its assets, its day, its tags."""
    wanted = set(request.asset_selection or [])
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    return dg.materialize(
        [a for a in assets if a.key in wanted],
        partition_key=request.partition_key,
        resources={"mesh": MeshResource(home=settings.home)},
        instance=instance,
        tags=request.tags,
        raise_on_error=False,
    )


def test_the_landing_run_materializes_the_derived_day_and_automation_adds_none(shop) -> None:
    defs, settings, instance = shop
    sensor = defs.resolve_sensor_def("shop_landing_sensor")
    watched = set(sensor.asset_selection.resolve(defs.resolve_asset_graph()))
    assert watched == {VISITS, TOTALS, SITES}
    automation = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    land(settings, "visit_id,day,seconds\n1,2025-03-01,5\n2,2025-03-01,6\n3,2025-03-01,7\n")
    [request] = requests(defs, settings, instance)
    assert request.asset_selection == [VISITS, TOTALS]  # the landed product first
    assert request.partition_key == D1.isoformat()
    result = launch(defs, settings, request, instance)
    assert result.success
    assert Lake(settings).read("shop/daily_totals")["visits"].to_list() == [3]
    automation = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=automation.cursor
    )
    assert automation.get_num_requested(TOTALS) == 0  # already done in the landing run
    assert requests(defs, settings, instance) == []  # and the file is not asked for again


def test_a_quarantined_file_starts_no_run_of_the_derived_product(shop) -> None:
    defs, settings, instance = shop
    land(settings, "visit_id,day,seconds\n1,2025-03-01,5\n")
    [request] = requests(defs, settings, instance)
    assert launch(defs, settings, request, instance).success
    land(settings, "visit_id,day,seconds\n,2025-03-01,5\n2,2025-03-01,6\n")  # keyless
    assert requests(defs, settings, instance) == []  # quarantined: no run, no derived run
    quarantined = Path(settings.quarantine_uri("shop")).rglob("*.csv")
    assert [p.name for p in quarantined] == [f"{D1}.csv"]
    assert Lake(settings).read("shop/daily_totals")["visits"].to_list() == [1]


def test_sensor_intervals_come_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_LANDING_INTERVAL", "7")
    monkeypatch.setenv("MESH_AUTOMATION_INTERVAL", "11")
    folder = tmp_path / "contracts"
    folder.mkdir()
    site = column("site_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True)
    _write(folder, "sites", [site], "merge")
    defs = domain_definitions("shop", [landing("sites")], contracts=folder)
    assert defs.resolve_sensor_def("shop_landing_sensor").minimum_interval_seconds == 7
    assert defs.resolve_sensor_def("shop_automation").minimum_interval_seconds == 11


def test_a_file_the_run_quarantines_leaves_the_derived_day_as_it_was(shop) -> None:
    defs, settings, instance = shop
    land(settings, "visit_id,day,seconds\n1,2025-03-01,5\n")
    [request] = requests(defs, settings, instance)
    assert launch(defs, settings, request, instance).success
    land(settings, "visit_id,day,seconds\n1,2025-03-01,5\n2,2025-03-01,-6\n")  # out of range
    [again] = requests(defs, settings, instance)  # the sensor reads types, not rules
    result = launch(defs, settings, again, instance)
    quarantined = Path(settings.quarantine_uri("shop")).rglob("*.csv")
    assert [p.name for p in quarantined] == [f"{D1}.csv"]
    assert Lake(settings).read("shop/visits")["visit_id"].to_list() == [1]
    assert Lake(settings).read("shop/daily_totals")["visits"].to_list() == [1]
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert not [c.check_name for c in failed if c.check_name.startswith("contract_")]
