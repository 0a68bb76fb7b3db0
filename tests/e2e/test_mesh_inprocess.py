"""The whole mesh in-process: simulated landing data → every product, checked and catalogued."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from dagster_project.app.refresh import RefreshReport, refresh
from dagster_project.checks.quality.companions import discover_contracts
from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.core.workspace import load_definitions, mesh_assets
from dagster_project.lake.storage import Lake
from demo.simulator import SimulationResult, simulate

START = date(2025, 3, 1)


@dataclass
class Mesh:
    settings: MeshSettings
    lake: Lake
    instance: dg.DagsterInstance
    assets: list[dg.AssetsDefinition]
    contracts: list[Contract]
    simulation: SimulationResult
    report: RefreshReport

    def refresh(self) -> RefreshReport:
        return refresh(self.assets, self.contracts, settings=self.settings, instance=self.instance)

    def row_counts(self) -> dict[str, int]:
        counts = {}
        for contract in self.contracts:
            info = self.lake.info(contract.key)
            assert info is not None, f"{contract.key} has no Delta table"
            counts[contract.key] = info.rows
        return counts


def build_mesh(home: Path, *, days: int, scale: int) -> Mesh:
    settings = MeshSettings(home=str(home))
    simulation = simulate(settings, days=days, scale=scale, start=START)
    assets = mesh_assets(load_definitions())
    contracts = discover_contracts()
    instance = dg.DagsterInstance.ephemeral()
    report = refresh(assets, contracts, settings=settings, instance=instance)
    return Mesh(settings, Lake(settings), instance, assets, contracts, simulation, report)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    home = tmp_path_factory.mktemp("mesh")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESH_HOME", str(home))
        patch.delenv("MESH_STORAGE_OPTIONS", raising=False)
        built = build_mesh(home, days=4, scale=3000)
        yield built
        built.instance.dispose()


def test_every_run_succeeds_and_every_asset_is_materialized(mesh: Mesh) -> None:
    assert mesh.report.runs, "nothing ran"
    assert len(mesh.report.runs) == len(mesh.report.waves)
    assert [r.success for r in mesh.report.runs] == [True] * len(mesh.report.runs)
    materialized = {
        e.asset_key for r in mesh.report.runs for e in r.get_asset_materialization_events()
    }
    assert materialized == {k for a in mesh.assets for k in a.keys}


def test_every_product_table_has_the_contracts_columns_and_rows(mesh: Mesh) -> None:
    domain_keys = {c.key for c in mesh.contracts if c.domain != "governance"}
    assert domain_keys == {
        "sales/stores",
        "sales/order_lines",
        "sales/daily_sales",
        "sales/insights",
        "sales/order_lines_anomalies",  # generated: order_lines switches anomalies on
        "inventory/products",
        "inventory/stock_levels",
        "inventory/demand_forecast",
        "inventory/replenishment_plan",
        "inventory/forecast_accuracy",
        "inventory/insights",
        "customers/customer_profiles",
        "customers/customer_segments",
        "customers/insights",
    }
    for contract in mesh.contracts:
        info = mesh.lake.info(contract.key)
        assert info is not None, contract.key
        assert info.columns == contract.column_names, contract.key
        if not contract.product.endswith("_anomalies"):  # empty when nothing is anomalous
            assert info.rows > 0, contract.key
    assert mesh.row_counts()["sales/order_lines"] == mesh.simulation.rows["sales/order_lines"]


def test_every_declared_check_was_evaluated_and_passed(mesh: Mesh) -> None:
    declared = {key for asset in mesh.assets for key in asset.check_keys}
    evaluations = mesh.report.check_results()
    assert {e.asset_check_key for e in evaluations} == declared
    failed = sorted(
        f"{e.asset_check_key.to_user_string()}: {e.description}"
        for e in evaluations
        if not e.passed
        and "skipped" not in e.metadata
        and e.asset_check_key.name != "policy_fairness"  # a warning about the model: below
    )
    assert failed == []
    fairness = {
        e.asset_key.to_user_string(): e
        for e in evaluations
        if e.asset_check_key.name == "policy_fairness"
    }
    assert set(fairness) == {"inventory/demand_forecast", "customers/customer_segments"}
    assert all(e.severity == dg.AssetCheckSeverity.WARN for e in fairness.values())
    # A first build has no history to compare with: drift is not judged, never passed.
    not_judged = {e.asset_check_key.name for e in evaluations if "skipped" in e.metadata}
    assert not_judged <= {"drift"}


def test_the_catalog_lists_every_domain_product_as_passed(mesh: Mesh) -> None:
    catalog = mesh.lake.read("governance/catalog").sort("product_key")
    domain = sorted(c.key for c in mesh.contracts if c.domain != "governance")
    assert catalog["product_key"].to_list() == domain
    # A fairness warning on the forecast is a finding about the model, not a broken check.
    statuses = dict(zip(catalog["product_key"], catalog["last_check_status"], strict=True))
    warned = {k for k, s in statuses.items() if s != "passed"}
    assert warned <= {"inventory/demand_forecast", "customers/customer_segments"}
    for key in warned:
        row = catalog.filter(pl.col("product_key") == key).row(0, named=True)
        assert row["failed_checks"] == "policy_fairness"
    counts = mesh.row_counts()
    for row in catalog.iter_rows(named=True):
        assert row["row_count"] == counts[row["product_key"]]
    scorecard = mesh.lake.read("governance/policy_scorecard")
    fair = scorecard.filter(pl.col("policy") == "fairness")
    assert scorecard.height == len(domain) * 6 + fair.height
    assert scorecard.filter(pl.col("policy") != "fairness")["passed"].all()
    assert sorted(fair["product_key"]) == [
        "customers/customer_segments",
        "inventory/demand_forecast",
    ]
    assert set(fair["status"]) <= {"passed", "warning"}  # judged on the built data


def test_daily_sales_add_up_to_the_order_lines(mesh: Mesh) -> None:
    lines = mesh.lake.read("sales/order_lines")
    daily = mesh.lake.read("sales/daily_sales")
    assert daily["units"].sum() == lines["quantity"].sum()
    # net_revenue is rounded to cents per row of daily_sales: at most half a cent off each.
    assert daily["net_revenue"].sum() == pytest.approx(
        lines["net_amount"].sum(), abs=0.005 * daily.height
    )
    assert sorted(daily["order_date"].unique().to_list()) == [date(2025, 3, d) for d in range(1, 5)]


def test_replaying_every_landing_file_changes_no_row_count(mesh: Mesh) -> None:
    # Append-only logs (the access audit) grow with every read; every other product must not.
    logs = {c.key for c in mesh.contracts if c.write_mode == "append"}
    before = {k: n for k, n in mesh.row_counts().items() if k not in logs}
    versions = {c.key: mesh.lake.info(c.key).version for c in mesh.contracts}
    again = mesh.refresh()
    assert again.success
    assert {k: n for k, n in mesh.row_counts().items() if k not in logs} == before
    # The replay really rewrote the products (a new Delta version each).
    assert all(mesh.lake.info(key).version > v for key, v in versions.items())
    assert [e for e in again.check_results() if not e.passed and "skipped" not in e.metadata] == []


def test_a_malformed_landing_file_is_quarantined_and_the_rest_loads(
    mesh_home: MeshSettings,
) -> None:
    settings = mesh_home
    simulation = simulate(settings, days=2, scale=1000, start=START)
    folder = settings.landing_uri("sales", "order_lines")
    good = pl.read_parquet(io.BytesIO(settings.files.read_bytes(f"{folder}/2025-03-02.parquet")))
    bad = good.head(5).with_columns(quantity=pl.lit("abc"), order_id=pl.col("order_id") + 1_000_000)
    bad_uri = f"{folder}/2025-03-02-late.csv"
    settings.files.write_text(bad_uri, bad.write_csv())

    with dg.DagsterInstance.ephemeral() as instance:
        report = refresh(
            mesh_assets(load_definitions()),
            discover_contracts(),
            settings=settings,
            instance=instance,
        )
        assert report.success
        events = [
            e
            for r in report.runs
            for e in r.get_asset_materialization_events()
            if e.asset_key == dg.AssetKey(["sales", "order_lines"])
        ]

    target = f"{settings.quarantine_uri('sales')}/order_lines/2025-03-02-late.csv"
    assert not settings.files.exists(bad_uri)
    assert settings.files.exists(target)
    reason = json.loads(settings.files.read_text(target + ".reason.json"))["reason"]
    assert "quantity" in reason and "abc" in reason

    # One run over both days (single-run backfill): one materialization per day.
    assert sorted(e.partition for e in events) == ["2025-03-01", "2025-03-02"]
    for event in events:
        metadata = event.materialization.metadata
        assert list(metadata["quarantined"].value) == ["2025-03-02-late.csv"]
        assert metadata["loaded_files"].value == ["2025-03-01.parquet", "2025-03-02.parquet"]
    lines = Lake(settings).read("sales/order_lines")
    assert lines.height == simulation.rows["sales/order_lines"]
    assert lines["order_id"].max() < 1_000_000
    assert Lake(settings).info("sales/daily_sales") is not None
