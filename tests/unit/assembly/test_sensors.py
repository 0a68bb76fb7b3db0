"""The sales landing sensor: one run per new file's product and day, quarantine for bad files."""

from __future__ import annotations

import io
import json
import os
import time
from datetime import date

import dagster as dg
import polars as pl
import pytest

from dagster_project.core.settings import MeshSettings
from dagster_project.lake.landing import landing_files, record_loaded
from dagster_project.lake.resource import MeshResource
from demo.simulator import simulate
from domains.sales.definitions import defs

ORDER_LINES = dg.AssetKey(["sales", "order_lines"])
STORES = dg.AssetKey(["sales", "stores"])


def mark_loaded(settings: MeshSettings, *keys: str) -> None:
    """Record every landed file of these products as loaded, as a materialization would."""
    for key in keys:
        record_loaded(settings, key, landing_files(settings, key))


@pytest.fixture
def landed(mesh_home: MeshSettings) -> MeshSettings:
    """Two simulated days: stores on the first, order lines on both; the products the
    order lines reference are already loaded, stores included."""
    simulate(mesh_home, days=2, scale=2000, start=date(2025, 3, 1))
    mark_loaded(mesh_home, "sales/stores", "inventory/products", "customers/customer_profiles")
    return mesh_home


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture
def tick(instance: dg.DagsterInstance):
    """`tick(settings, cursor)`: evaluate the sales landing sensor once."""
    sensor = defs.resolve_sensor_def("sales_landing_sensor")

    def evaluate(settings: MeshSettings, cursor: str | None = None) -> dg.SensorResult:
        context = dg.build_sensor_context(
            cursor=cursor,
            resources={"mesh": MeshResource(home=settings.home)},
            instance=instance,
        )
        result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        return result

    return evaluate


@pytest.fixture
def settle(tick):
    """`settle(settings, cursor)`: two ticks in a row, as a file must look the same on two
    ticks before it is judged (MESH_LANDING_STABLE=ticks); the second tick's result."""

    def evaluate(settings: MeshSettings, cursor: str | None = None) -> dg.SensorResult:
        return tick(settings, tick(settings, cursor).cursor)

    return evaluate


FOLLOWERS = {  # the derived daily products a landing run materializes too
    ORDER_LINES: [
        dg.AssetKey(["sales", "daily_sales"]),
        dg.AssetKey(["sales", "order_lines_anomalies"]),
    ],
    STORES: [],
}


def requested(result: dg.SensorResult) -> list[tuple[str, str | None]]:
    """(product, partition) of each run request: one landed product, then its followers."""
    requests = result.run_requests or []
    assert all(r.asset_selection[1:] == FOLLOWERS[r.asset_selection[0]] for r in requests)
    return sorted((r.asset_selection[0].to_user_string(), r.partition_key) for r in requests)


def files_of(result: dg.SensorResult) -> dict[tuple[str, str | None], str]:
    return {
        (r.asset_selection[0].to_user_string(), r.partition_key): r.tags["mesh/landing_files"]
        for r in result.run_requests or []
    }


def test_the_sensor_watches_the_sales_landing_products() -> None:
    sensor = defs.resolve_sensor_def("sales_landing_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert set(sensor.asset_selection.resolve(defs.resolve_asset_graph())) == {
        STORES,
        ORDER_LINES,
        *FOLLOWERS[ORDER_LINES],
    }


def test_each_new_file_gives_one_run_for_its_product_and_day(
    landed: MeshSettings, tick, settle
) -> None:
    assert requested(tick(landed)) == []  # first seen: maybe still being written
    first = settle(landed)
    assert requested(first) == [
        ("sales/order_lines", "2025-03-01"),
        ("sales/order_lines", "2025-03-02"),
    ]
    assert files_of(first) == {
        ("sales/order_lines", "2025-03-01"): "2025-03-01.parquet",
        ("sales/order_lines", "2025-03-02"): "2025-03-02.parquet",
    }
    assert first.asset_events == []
    # The same files give the same run keys: a repeated tick cannot start runs twice.
    assert {r.run_key for r in settle(landed).run_requests or []} == {
        r.run_key for r in first.run_requests or []
    }

    # Nothing new: no runs.
    assert (tick(landed, first.cursor).run_requests or []) == []

    # One more day lands: exactly one run, for that day of order lines.
    simulate(landed, days=1, scale=1000)
    mark_loaded(landed, "customers/customer_profiles")  # that day's signups, as their run would
    third = settle(landed, first.cursor)
    assert requested(third) == [("sales/order_lines", "2025-03-03")]
    assert (third.run_requests or [])[0].tags["mesh/landing_files"] == "2025-03-03.parquet"
    assert (tick(landed, third.cursor).run_requests or []) == []


def test_a_changed_file_is_requested_again(landed: MeshSettings, tick, settle) -> None:
    first = settle(landed)
    uri = f"{landed.landing_uri('sales', 'stores')}/2025-03-01.parquet"
    stores = pl.read_parquet(io.BytesIO(landed.files.read_bytes(uri)))
    buffer = io.BytesIO()
    stores.with_columns(size_sqm=pl.col("size_sqm") + 1).write_parquet(buffer, statistics=False)
    landed.files.write_bytes(uri, buffer.getvalue())
    assert requested(tick(landed, first.cursor)) == []  # changed: wait for it to settle
    again = settle(landed, first.cursor)
    assert requested(again) == [("sales/stores", None)]


def test_a_malformed_file_is_quarantined_and_good_files_still_run(
    landed: MeshSettings, settle
) -> None:
    bad_uri = f"{landed.landing_uri('sales', 'order_lines')}/2025-03-02-late.csv"
    landed.files.write_text(bad_uri, "order_id,line_number,colour\n1,1,red\n")
    result = settle(landed)
    assert requested(result) == [
        ("sales/order_lines", "2025-03-01"),
        ("sales/order_lines", "2025-03-02"),
    ]
    assert files_of(result)[("sales/order_lines", "2025-03-02")] == "2025-03-02.parquet"

    target = f"{landed.quarantine_uri('sales')}/order_lines/2025-03-02-late.csv"
    assert not landed.files.exists(bad_uri)
    assert landed.files.exists(target)
    reason = json.loads(landed.files.read_text(target + ".reason.json"))
    assert "colour" in reason["reason"]

    assert len(result.asset_events) == 1
    event = result.asset_events[0]
    assert isinstance(event, dg.AssetObservation)
    assert event.asset_key == ORDER_LINES
    assert event.metadata["quarantined_file"].value == "2025-03-02-late.csv"
    assert "colour" in event.metadata["reason"].value
    assert bad_uri not in (result.cursor or "")


def test_files_already_loaded_by_a_materialization_give_no_request(
    landed: MeshSettings, settle, instance: dg.DagsterInstance
) -> None:
    stores = next(
        a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) and a.key == STORES
    )
    loaded = landed.registry_uri("loaded", "sales", "stores", "2025-03-01.parquet.json")
    landed.files.fs.delete_file(landed.files.path(loaded))  # forget the fixture's record
    run = dg.materialize(
        [stores], resources={"mesh": MeshResource(home=landed.home)}, instance=instance
    )
    assert run.success
    assert landed.files.exists(loaded)
    result = settle(landed)  # no cursor: only the registry knows the file was loaded
    assert requested(result) == [
        ("sales/order_lines", "2025-03-01"),
        ("sales/order_lines", "2025-03-02"),
    ]


def test_order_lines_wait_until_the_customers_they_reference_are_loaded(
    mesh_home: MeshSettings, tick, settle
) -> None:
    simulate(mesh_home, days=1, scale=1000, start=date(2025, 3, 1))
    mark_loaded(mesh_home, "inventory/products")
    first = settle(mesh_home)
    # Customer profiles of the same day are landed but not loaded: only stores may run.
    assert requested(first) == [("sales/stores", None)]
    mark_loaded(mesh_home, "customers/customer_profiles")
    # Stores of the same domain too: its run has not loaded it yet.
    assert requested(tick(mesh_home, first.cursor)) == []
    mark_loaded(mesh_home, "sales/stores")
    assert requested(tick(mesh_home, first.cursor)) == [("sales/order_lines", "2025-03-01")]


def test_files_gone_from_the_folder_leave_the_cursor(landed: MeshSettings, tick, settle) -> None:
    first = settle(landed)
    uri = f"{landed.landing_uri('sales', 'order_lines')}/2025-03-01.parquet"
    assert uri in json.loads(first.cursor or "{}")["requested"]
    landed.files.move(uri, f"{landed.home}/archive/2025-03-01.parquet")  # archived after loading
    later = json.loads(tick(landed, first.cursor).cursor or "{}")
    assert uri not in later["requested"] and uri not in later["observed"]
    assert f"{landed.landing_uri('sales', 'order_lines')}/2025-03-02.parquet" in later["requested"]


# -- stability: a file is judged only once complete ------------------------------------------

STORES_CSV = "store_id,store_name,city,region\n1,Harbour,Porto,North\n2,Old Town,Lyon,South\n"


def stores_uri(settings: MeshSettings, name: str = "2025-03-05.csv") -> str:
    return f"{settings.landing_uri('sales', 'stores')}/{name}"


def age(settings: MeshSettings, uri: str, seconds: float) -> None:
    """Make a landed file look `seconds` old."""
    then = time.time() - seconds
    os.utime(settings.files.path(uri), (then, then))


def test_a_file_still_being_written_is_neither_judged_nor_requested(
    mesh_home: MeshSettings, tick
) -> None:
    uri = stores_uri(mesh_home)
    mesh_home.files.write_text(uri, STORES_CSV[:50])  # half a file: its last row is cut
    first = tick(mesh_home)
    assert requested(first) == [] and first.asset_events == []
    mesh_home.files.write_text(uri, STORES_CSV[:50] + "x")  # still growing
    second = tick(mesh_home, first.cursor)
    assert requested(second) == [] and second.asset_events == []
    mesh_home.files.write_text(uri, STORES_CSV)  # complete
    age(mesh_home, uri, 5)
    third = tick(mesh_home, second.cursor)
    assert requested(third) == []  # changed since the last tick
    fourth = tick(mesh_home, third.cursor)
    assert requested(fourth) == [("sales/stores", None)]
    assert fourth.asset_events == []  # never quarantined
    assert mesh_home.files.exists(uri)


def test_a_file_younger_than_the_minimum_age_waits(
    mesh_home: MeshSettings, settle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_LANDING_MIN_AGE_SECONDS", "60")
    uri = stores_uri(mesh_home)
    mesh_home.files.write_text(uri, STORES_CSV)
    result = settle(mesh_home)
    assert requested(result) == []
    age(mesh_home, uri, 61)
    assert requested(settle(mesh_home, result.cursor)) == [("sales/stores", None)]


def test_with_markers_a_file_is_judged_once_marked_done(
    mesh_home: MeshSettings, tick, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_LANDING_STABLE", "marker")
    uri = stores_uri(mesh_home)
    mesh_home.files.write_text(uri, STORES_CSV[:50])  # partial, and no marker
    first = tick(mesh_home)
    assert requested(tick(mesh_home, first.cursor)) == [] and first.asset_events == []
    mesh_home.files.write_text(uri, STORES_CSV)
    mesh_home.files.write_text(uri + ".done", "")
    marked = tick(mesh_home, first.cursor)  # a marker needs no second tick
    assert requested(marked) == [("sales/stores", None)]
    assert marked.asset_events == []


def test_with_markers_a_success_file_completes_every_older_file(
    mesh_home: MeshSettings, tick, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_LANDING_STABLE", "marker")
    older, newer = stores_uri(mesh_home, "2025-03-05.csv"), stores_uri(mesh_home, "2025-03-06.csv")
    mesh_home.files.write_text(older, STORES_CSV)
    age(mesh_home, older, 30)
    mesh_home.files.write_text(stores_uri(mesh_home, "_SUCCESS"), "")
    age(mesh_home, stores_uri(mesh_home, "_SUCCESS"), 20)
    mesh_home.files.write_text(newer, STORES_CSV[:50])  # landed after the marker
    result = tick(mesh_home)
    assert files_of(result) == {("sales/stores", None): "2025-03-05.csv"}


def test_a_cursor_written_before_stability_is_still_read(mesh_home: MeshSettings, tick) -> None:
    uri = stores_uri(mesh_home)
    mesh_home.files.write_text(uri, STORES_CSV)
    signature = landing_files(mesh_home, "sales/stores")[0].signature
    old_cursor = json.dumps({uri: signature})  # uri → signature of the requested files
    result = tick(mesh_home, old_cursor)
    assert requested(result) == []
    assert json.loads(result.cursor or "{}")["requested"] == {uri: signature}
