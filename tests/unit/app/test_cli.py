import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dagster_project.app.cli import app

runner = CliRunner()
# A fixed first day: the simulated data (and so every check verdict) must not depend on
# the day the suite runs. Any first day passes (anomaly thresholds are calibrated per
# product; tests/unit/checks/quality/test_anomaly.py tries several).
START = "2025-03-01"


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "mesh"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    return {"MESH_HOME": str(tmp_path / "mesh")}


def test_simulate_lands_files_and_continues(env):
    first = runner.invoke(
        app, ["simulate", "--days", "2", "--scale", "1000", "--start", "2025-03-01"]
    )
    assert first.exit_code == 0, first.output
    more = runner.invoke(app, ["simulate", "--days", "1", "--scale", "500"])
    assert more.exit_code == 0, more.output
    landing = Path(env["MESH_HOME"]) / "landing" / "sales" / "order_lines"
    assert sorted(p.name for p in landing.iterdir()) == [
        "2025-03-01.parquet",
        "2025-03-02.parquet",
        "2025-03-03.parquet",
    ]


def test_status_before_anything_is_built(env):
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    records = {r["product"]: r for r in json.loads(result.output)}
    assert {"sales/order_lines", "customers/customer_segments"} <= set(records)
    assert records["sales/order_lines"]["freshness"] == "never built"
    assert records["sales/order_lines"]["rows"] is None


def test_demo_without_serving_builds_and_checks_everything(env):
    result = runner.invoke(
        app, ["demo", "--no-serve", "--scale", "2000", "--days", "3", "--start", START]
    )
    assert result.exit_code == 0, result.output
    status = runner.invoke(app, ["status", "--json"])
    records = json.loads(status.output)
    # 14 domain products (sales/order_lines_anomalies, the three domains' insights and
    # inventory's demand_forecast, replenishment_plan and forecast_accuracy among them);
    # catalog, scorecard, docs, index, graph, access audit
    assert len(records) == 20
    for record in records:
        if record["product"].endswith("_anomalies"):  # empty when nothing looks anomalous
            assert record["rows"] is not None, record
            continue
        assert record["rows"] and record["rows"] > 0, record
        assert record["freshness"] == "fresh", record
        assert record["checks_failed"] == [], record
        # A first build has no earlier days to compare with: drift is not judged (never
        # passed); every other check passes.
        assert set(record["checks_not_judged"]) <= {"drift"}, record
        judged = record["checks_total"] - len(record["checks_not_judged"])
        assert record["checks_passed"] == judged > 0, record
    not_judged = {r["product"] for r in records if r["checks_not_judged"]}
    assert not_judged == {"sales/order_lines", "sales/daily_sales"}


def test_api_keys_are_created_listed_and_revoked(env):
    from dagster_project.access.api_keys import ApiKeyStore

    created = runner.invoke(app, ["api-key", "create", "kim", "--role", "steward", "--days", "30"])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert ApiKeyStore().authenticate(key).role == "steward"
    listed = runner.invoke(app, ["api-key", "list"])
    assert "kim" in listed.output and "steward" in listed.output and key not in listed.output
    unknown = runner.invoke(app, ["api-key", "create", "bob", "--role", "admin"])
    assert unknown.exit_code != 0 and "unknown role" in unknown.output
    assert runner.invoke(app, ["api-key", "revoke", "kim"]).exit_code == 0
    assert ApiKeyStore().authenticate(key) is None
    assert runner.invoke(app, ["api-key", "revoke", "kim"]).exit_code == 1
