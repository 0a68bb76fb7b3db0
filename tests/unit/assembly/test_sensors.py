"""The sales landing sensor: one run per new file's product and day, quarantine for bad files."""

from __future__ import annotations

import io
import json
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


def requested(result: dg.SensorResult) -> list[tuple[str, str | None]]:
    """(product, partition) of each run request; each request is for one product."""
    requests = result.run_requests or []
    assert all(len(r.asset_selection or []) == 1 for r in requests)
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
    }


def test_each_new_file_gives_one_run_for_its_product_and_day(landed: MeshSettings, tick) -> None:
    first = tick(landed)
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
    assert {r.run_key for r in tick(landed).run_requests or []} == {
        r.run_key for r in first.run_requests or []
    }

    # Nothing new: no runs.
    assert (tick(landed, first.cursor).run_requests or []) == []

    # One more day lands: exactly one run, for that day of order lines.
    simulate(landed, days=1, scale=1000)
    mark_loaded(landed, "customers/customer_profiles")  # that day's signups, as their run would
    third = tick(landed, first.cursor)
    assert requested(third) == [("sales/order_lines", "2025-03-03")]
    assert (third.run_requests or [])[0].tags["mesh/landing_files"] == "2025-03-03.parquet"
    assert (tick(landed, third.cursor).run_requests or []) == []


def test_a_changed_file_is_requested_again(landed: MeshSettings, tick) -> None:
    first = tick(landed)
    uri = f"{landed.landing_uri('sales', 'stores')}/2025-03-01.parquet"
    stores = pl.read_parquet(io.BytesIO(landed.files.read_bytes(uri)))
    buffer = io.BytesIO()
    stores.with_columns(size_sqm=pl.col("size_sqm") + 1).write_parquet(buffer, statistics=False)
    landed.files.write_bytes(uri, buffer.getvalue())
    again = tick(landed, first.cursor)
    assert requested(again) == [("sales/stores", None)]


def test_a_malformed_file_is_quarantined_and_good_files_still_run(
    landed: MeshSettings, tick
) -> None:
    bad_uri = f"{landed.landing_uri('sales', 'order_lines')}/2025-03-02-late.csv"
    landed.files.write_text(bad_uri, "order_id,line_number,colour\n1,1,red\n")
    result = tick(landed)
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
    assert bad_uri not in json.loads(result.cursor or "{}")


def test_files_already_loaded_by_a_materialization_give_no_request(
    landed: MeshSettings, tick, instance: dg.DagsterInstance
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
    result = tick(landed)  # no cursor: only the registry knows the file was loaded
    assert requested(result) == [
        ("sales/order_lines", "2025-03-01"),
        ("sales/order_lines", "2025-03-02"),
    ]


def test_order_lines_wait_until_the_customers_they_reference_are_loaded(
    mesh_home: MeshSettings, tick
) -> None:
    simulate(mesh_home, days=1, scale=1000, start=date(2025, 3, 1))
    mark_loaded(mesh_home, "inventory/products")
    first = tick(mesh_home)
    # Customer profiles of the same day are landed but not loaded: only stores may run.
    assert requested(first) == [("sales/stores", None)]
    mark_loaded(mesh_home, "customers/customer_profiles")
    # Stores of the same domain too: its run has not loaded it yet.
    assert requested(tick(mesh_home, first.cursor)) == []
    mark_loaded(mesh_home, "sales/stores")
    assert requested(tick(mesh_home, first.cursor)) == [("sales/order_lines", "2025-03-01")]


def test_files_gone_from_the_folder_leave_the_cursor(landed: MeshSettings, tick) -> None:
    first = tick(landed)
    uri = f"{landed.landing_uri('sales', 'order_lines')}/2025-03-01.parquet"
    assert uri in json.loads(first.cursor or "{}")
    landed.files.move(uri, f"{landed.home}/archive/2025-03-01.parquet")  # archived after loading
    later = json.loads(tick(landed, first.cursor).cursor or "{}")
    assert uri not in later
    assert f"{landed.landing_uri('sales', 'order_lines')}/2025-03-02.parquet" in later
