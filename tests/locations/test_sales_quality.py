"""The sales location's quality checks, run for real: `materialize()` over simulated days
with injected anomalies and drift, and the results the checks report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
import polars as pl
import pytest

from dagster_project.app.refresh import RefreshReport, refresh
from dagster_project.ask.narratives import insights_report_uri
from dagster_project.checks.quality.alerts import read_alerts
from dagster_project.checks.quality.companions import discover_contracts
from dagster_project.checks.quality.score import load_score
from dagster_project.core.settings import MeshSettings
from dagster_project.core.workspace import mesh_assets
from dagster_project.lake.storage import Lake
from demo.simulator import AnomalySpec, DriftSpec, simulate

START = date(2025, 3, 3)
DAYS = 9
LAST = START + timedelta(days=DAYS - 1)
OTHER_DOMAINS = ("inventory/products", "customers/customer_profiles")  # referenced by sales


@dataclass
class Built:
    settings: MeshSettings
    report: RefreshReport

    def check(self, key: str, name: str) -> dg.AssetCheckEvaluation:
        found = [
            c
            for c in self.report.check_results()
            if c.asset_key.to_user_string() == key and c.check_name == name
        ]
        assert len(found) == 1, (key, name)
        return found[0]

    def materialization(self, key: str) -> dg.AssetMaterialization:
        events = [
            e.materialization
            for r in self.report.runs
            for e in r.get_asset_materialization_events()
            if e.asset_key.to_user_string() == key
        ]
        return events[-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, demo_contracts) -> Built:
    home = tmp_path_factory.mktemp("sales_quality")
    settings = MeshSettings(home=str(home))
    drift = DriftSpec(LAST, "Electronics", price_shift_factor=2.0, online_share=0.8)
    simulate(
        settings, days=DAYS, scale=27_000, start=START, anomalies=AnomalySpec(0.01), drift=drift
    )
    lake = Lake(settings)
    for key in OTHER_DOMAINS:  # what sales' referential-integrity checks look up
        lake.write(demo_contracts[key], pl.read_parquet(str(home / "landing" / key / "*.parquet")))
    from domains.sales.definitions import defs

    contracts = [c for c in discover_contracts() if c.domain == "sales"]
    with pytest.MonkeyPatch.context() as patch, dg.DagsterInstance.ephemeral() as instance:
        patch.setenv("MESH_HOME", str(home))
        patch.delenv("MESH_ALERT_WEBHOOK_URL", raising=False)
        # One instance for every run, so sales/insights reads the checks of the runs before.
        assets = mesh_assets({"sales": defs})
        report = refresh(assets, contracts, settings=settings, instance=instance)
    assert report.success
    return Built(settings, report)


def test_the_anomalies_check_warns_and_explains(built: Built) -> None:
    check = built.check("sales/order_lines", "anomalies")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    meta = check.metadata
    assert meta["rows_scored"].value == 27_000 and meta["anomalies"].value > 200
    assert meta["detector"].value in {"robust_z", "isolation_forest", "ecod"}
    assert len(meta["detector_trials"].value) == 3
    assert "synthetically corrupted" in meta["selection_criterion"].value
    top = meta["top_anomalies"].value
    assert "| score | explanation |" in top and "the usual for" in top
    assert meta["anomalies_product"].value == "sales/order_lines_anomalies"
    assert "anomalous row(s) in 27,000" in check.description


def test_flagged_rows_land_in_the_anomalies_product(built: Built) -> None:
    table = Lake(built.settings).read("sales/order_lines_anomalies")
    anomalies = built.check("sales/order_lines", "anomalies").metadata["anomalies"].value
    assert table.height == anomalies
    assert table["status"].unique().to_list() == ["open"]
    assert table["anomaly_score"].min() >= 1.0
    assert table["reason"].str.starts_with("order ").all()
    passed = {
        c.check_name: c.passed
        for c in built.report.check_results()
        if c.asset_key.to_user_string() == "sales/order_lines_anomalies"
    }
    # its own contract and policy checks; stale by its 2025 event times (event_freshness)
    assert passed.pop("event_freshness") is False
    assert passed and all(passed.values())


def test_the_drift_check_warns_with_the_root_cause_and_a_report(built: Built) -> None:
    check = built.check("sales/order_lines", "drift")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    meta = check.metadata
    assert {"channel", "unit_price"} <= set(meta["drifted_columns"].value.split(", "))
    columns = meta["columns"].value
    assert columns["channel"]["method"] == "jensenshannon" and columns["channel"]["drifted"]
    assert "category Electronics" in meta["root_cause"].value
    report = meta["report"].value
    assert report.endswith(f"reports/drift/sales/order_lines/{LAST}.html")
    assert built.settings.files.exists(report)
    texts = [a["text"] for a in read_alerts(built.settings)]
    assert any(t.startswith("sales/order_lines: ") and "drifted" in t for t in texts)
    assert any("anomalous row(s)" in t for t in texts)


def test_daily_sales_has_the_drift_check_other_engineers_rely_on(built: Built) -> None:
    check = built.check("sales/daily_sales", "drift")
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert "the same weekday" in check.metadata["reference"].value


def test_blocking_checks_are_untouched_and_scores_explained(built: Built) -> None:
    failed = [
        f"{c.asset_key.to_user_string()}:{c.check_name}"
        for c in built.report.check_results()
        if not c.passed and c.check_name not in {"anomalies", "drift", "event_freshness"}
    ]
    assert failed == []
    meta = built.materialization("sales/order_lines").metadata
    assert 0 < meta["quality_score"].value < 100
    assert "The weakest dimension is" in meta["quality_narrative"].value
    saved = load_score(
        built.settings, next(c for c in discover_contracts() if c.key == "sales/stores")
    )
    assert saved is not None and saved.dimensions["anomalies"] is None  # not monitored


def test_the_insights_report_the_warnings_as_risks(built: Built) -> None:
    insights = Lake(built.settings).read("sales/insights").filter(pl.col("kind") == "risk")
    risks = {r["subject"]: r for r in insights.iter_rows(named=True)}
    drift = built.check("sales/order_lines", "drift").metadata["columns"].value
    for column in ("channel", "unit_price"):
        row = risks[f"column=sales/order_lines.{column}"]
        assert (row["metric"], row["value"]) == ("drift_score", drift[column]["score"])
        assert row["narrative"].startswith(f"Column {column} of sales/order_lines drifted: ")
        assert "; the drift check has warned since 20" in row["narrative"]
    rate = built.check("sales/order_lines", "anomalies").metadata["anomaly_rate"].value
    anomalies = risks["product=sales/order_lines"]
    assert anomalies["metric"] == "anomaly_rate_pct"
    assert anomalies["value"] == pytest.approx(rate * 100)
    assert "look anomalous" in anomalies["narrative"]
    assert "in sales/order_lines_anomalies" in anomalies["narrative"]
    report = built.settings.files.read_text(insights_report_uri(built.settings, "sales"))
    warnings = report.split("## Data quality warnings")[1]
    assert sorted(line for line in warnings.splitlines() if line) == sorted(
        f"- {r['narrative']}" for r in risks.values()
    )
