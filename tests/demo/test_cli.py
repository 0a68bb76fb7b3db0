"""`mesh simulate` and `mesh demo`: the demo's commands, joined to `mesh` as plugins."""

import json
from pathlib import Path

from typer.testing import CliRunner

runner = CliRunner()
# A fixed first day: the simulated data (and so every check verdict) must not depend on
# the day the suite runs. Any first day passes (anomaly thresholds are calibrated per
# product; tests/unit/checks/quality/test_anomaly.py tries several).
START = "2025-03-01"


def test_simulate_lands_files_and_continues(mesh_env, declared_mesh):
    args = ["simulate", "--days", "2", "--scale", "1000", "--start", "2025-03-01"]
    first = runner.invoke(declared_mesh, args)
    assert first.exit_code == 0, first.output
    more = runner.invoke(declared_mesh, ["simulate", "--days", "1", "--scale", "500"])
    assert more.exit_code == 0, more.output
    landing = Path(mesh_env["MESH_HOME"]) / "landing" / "sales" / "order_lines"
    assert sorted(p.name for p in landing.iterdir()) == [
        "2025-03-01.parquet",
        "2025-03-02.parquet",
        "2025-03-03.parquet",
    ]


def test_demo_without_serving_builds_and_checks_everything(mesh_env, declared_mesh):
    args = ["demo", "--no-serve", "--scale", "2000", "--days", "3", "--start", START]
    result = runner.invoke(declared_mesh, args)
    assert result.exit_code == 0, result.output
    # the summary lists every asset: products, shared copies, synthetic ones, the model
    assert "Built (rows now in the lake; seconds this refresh took)" in result.output
    for asset in (
        "sales/stores_shared_partner",
        "customers/customer_profiles_synthetic",
        "inventory/demand_model",
        "inventory/demand_scenario",
        "governance/semantic_index",
    ):
        assert asset in result.output, asset
    assert "(failed)" not in result.output
    status = runner.invoke(declared_mesh, ["status", "--json"])
    # The demo builds the retail mesh; the workspace's real-data example is listed unbuilt.
    records = [r for r in json.loads(status.output) if not r["product"].startswith("dragracer/")]
    # 14 domain products (sales/order_lines_anomalies, the three domains' insights and
    # inventory's demand_forecast, replenishment_plan and forecast_accuracy among them);
    # catalog, scorecard, docs, index, graph, access audit
    assert len(records) == 20
    for record in records:
        if record["product"].endswith("_anomalies"):  # empty when nothing looks anomalous
            assert record["rows"] is not None, record
            continue
        assert record["rows"] and record["rows"] > 0, record
        # Just written, but the simulated days are in the past (START): a product with an
        # event time is stale by its own data, and only that fails; freshness in the
        # status is that same judgement, never the time of the write.
        assert set(record["checks_failed"]) <= {"event_freshness"}, record
        stale_by_data = "event_freshness" in record["checks_failed"]
        assert (record["freshness"] == "stale") == stale_by_data, record
        assert record["freshness"] != "fresh" or record["newest_event"], record
        # A first build has no earlier days to compare with: drift is not judged (never
        # passed); every other check passes.
        assert set(record["checks_not_judged"]) <= {"drift"}, record
        judged = record["checks_total"] - len(record["checks_not_judged"])
        assert record["checks_passed"] == judged - len(record["checks_failed"]) > 0, record
    not_judged = {r["product"] for r in records if r["checks_not_judged"]}
    # (an empty anomalies table has no event time to judge its freshness by)
    assert not_judged - {"sales/order_lines_anomalies"} == {
        "sales/order_lines",
        "sales/daily_sales",
    }
    stale = {r["product"] for r in records if r["checks_failed"]}
    assert stale == {"sales/order_lines", "sales/daily_sales", "inventory/stock_levels"}
