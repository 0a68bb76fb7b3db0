"""The inventory location's model-backed assets, materialized for real: the demand model
is trained on simulated daily sales, logged and registered in MLflow; its champion
publishes the forecast, from which the replenishment plan, the accuracy product and a
what-if scenario follow, each checked against its contract."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import dagster as dg
import polars as pl
import pytest

from dagster_project.ai import AIResource
from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import Lake
from dagster_project.ml.tracking import MLflowResource
from domains.inventory.definitions import defs
from domains.inventory.forecasting import HORIZON, MODEL_NAME
from tests.sales_history import history

MODEL_ASSETS = [
    "inventory/demand_model",
    "inventory/demand_forecast",
    "inventory/replenishment_plan",
    "inventory/forecast_accuracy",
    "inventory/demand_scenario",
]


def _assets(*keys: str) -> list[dg.AssetsDefinition]:
    wanted = {dg.AssetKey(k.split("/")) for k in keys}
    return [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.key in wanted]


def _materialize(home: MeshSettings, instance: dg.DagsterInstance, *keys: str, config=None):
    return dg.materialize(
        _assets(*keys),
        resources={
            "mesh": MeshResource(home=home.home),
            "mlflow": MLflowResource(home=home.home),
            "ai": AIResource(provider="offline"),
        },
        instance=instance,
        run_config={"ops": config or {}},
        raise_on_error=False,
    )


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    events = [
        e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key
    ]
    assert len(events) == 1, key
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


def test_the_location_declares_models_sensor_schedule_and_foreign_inputs() -> None:
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert set(MODEL_ASSETS) <= keys
    assert {"sales/daily_sales", "sales/stores"} <= keys  # specs of sales' products
    assert defs.resolve_sensor_def("inventory_retrain_on_drift")
    assert defs.resolve_schedule_def("inventory_weekly_retraining").cron_schedule == "0 3 * * 1"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, mlflow_template) -> dict:
    """One mesh home with the model chain built on 21 simulated days."""
    import shutil

    home = tmp_path_factory.mktemp("inventory")
    shutil.copy(mlflow_template, home / "mlflow.db")
    settings = MeshSettings(home=str(home))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESH_HOME", str(home))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        from dagster_project.core.contracts import load_contract
        from tests.factories import CONTRACT_FILES

        contracts = {c.key: c for c in (load_contract(p) for p in CONTRACT_FILES)}
        history().write(Lake(settings), contracts)
        instance = dg.DagsterInstance.ephemeral()
        first = _materialize(settings, instance, *MODEL_ASSETS)
        again = _materialize(settings, instance, "inventory/demand_model")
        yield {
            "settings": settings,
            "lake": Lake(settings),
            "contracts": contracts,
            "first": first,
            "again": again,
            "instance": instance,
        }
        instance.dispose()


def test_every_model_asset_materializes_and_every_check_passes(built: dict) -> None:
    first = built["first"]
    assert first.success
    materialized = {e.asset_key.to_user_string() for e in first.get_asset_materialization_events()}
    assert materialized == set(MODEL_ASSETS)
    failed = [
        e.asset_check_key
        for e in first.get_asset_check_evaluations()
        if not e.passed and e.asset_check_key.name != "policy_fairness"
    ]
    assert failed == []
    # Fairness warns, never blocks; on these 21 simulated days it may find a category the
    # model serves worse, and then says which one, by how much, on how many rows.
    fairness = [
        e
        for e in first.get_asset_check_evaluations()
        if e.asset_check_key.name == "policy_fairness"
    ]
    assert [e.asset_key.to_user_string() for e in fairness] == ["inventory/demand_forecast"]
    assert "skipped" not in fairness[0].metadata  # judged on the backtest days' sales
    assert fairness[0].severity == dg.AssetCheckSeverity.WARN
    if not fairness[0].passed:
        assert re.search(
            r"for (region|category) = \w+ is [\d.]+, \d+% above", fairness[0].description
        )
    assert {d["segment"] for d in fairness[0].metadata["disparities"].value} == {
        "region",
        "category",
    }
    assert {e.asset_check_key.name for e in first.get_asset_check_evaluations()} >= {
        "contract_schema",
        "contract_unique",
        "contract_range",
        "contract_referential_integrity",
    }


def test_the_model_run_is_linked_and_its_backtest_beats_seasonal_naive(built: dict) -> None:
    meta = _metadata(built["first"], "inventory/demand_model")
    assert meta["mlflow_run"].startswith("http://127.0.0.1:5000/#/experiments/")
    assert meta["model_uri"] == f"models:/{MODEL_NAME}/1"
    assert (meta["decision"], meta["champion_version"]) == ("promoted", 1)
    assert meta["fairness_gate"] in {"passed", "flagged, no champion to keep"}
    assert meta["worst_segment"].startswith(("region=", "category="))
    assert meta["wape"] < meta["baseline_wape"]
    run_id = meta["mlflow_run"].rsplit("/", 1)[-1]
    run = MLflowResource(home=built["settings"].home).client().get_run(run_id)
    assert {"wape", "mae", "bias", "baseline_wape", "train_s"} <= set(run.data.metrics)
    assert run.data.params["max_iter"] == "100"


def test_retraining_on_the_same_data_keeps_the_champion(built: dict) -> None:
    meta = _metadata(built["again"], "inventory/demand_model")
    assert (meta["model_version"], meta["decision"], meta["champion_version"]) == (2, "rejected", 1)
    assert meta["champion_wape_before"] == pytest.approx(meta["wape"])
    client = MLflowResource(home=built["settings"].home).client()
    assert client.get_model_version(MODEL_NAME, "2").tags["champion_decision"] == "rejected"


def test_the_forecast_covers_the_next_two_weeks_and_the_backtest_days(built: dict) -> None:
    lake, contract = built["lake"], built["contracts"]["inventory/demand_forecast"]
    forecast = lake.read("inventory/demand_forecast")
    assert forecast.columns == contract.column_names
    last_sale = history().daily_sales["order_date"].max()
    days = sorted(forecast["forecast_date"].unique())
    assert days[-1] == last_sale + timedelta(days=HORIZON)
    hindcast = [d for d in days if d <= last_sale]
    assert len(hindcast) == _metadata(built["first"], "inventory/demand_forecast")["hindcast_days"]
    assert (forecast["lower_units"] <= forecast["predicted_units"]).all()
    assert (forecast["predicted_units"] <= forecast["upper_units"]).all()
    assert set(forecast["model_version"]) == {"1"}


def test_the_plan_and_accuracy_follow_from_the_forecast(built: dict) -> None:
    lake, contracts = built["lake"], built["contracts"]
    plan = lake.read("inventory/replenishment_plan")
    assert plan.columns == contracts["inventory/replenishment_plan"].column_names
    stock = history().stock_levels
    assert (
        plan.height == stock.filter(pl.col("snapshot_date") == stock["snapshot_date"].max()).height
    )
    assert plan["stockout_risk"].is_between(0, 1).all()
    orders = plan.filter(pl.col("reorder_qty") > 0)
    assert orders.height and all(r.startswith("Order ") for r in orders["rationale"])
    accuracy = lake.read("inventory/forecast_accuracy")
    assert (
        accuracy.height == _metadata(built["first"], "inventory/demand_forecast")["hindcast_days"]
    )
    assert accuracy["wape"].is_not_null().all()


def test_the_scenario_reports_a_table_a_narrative_and_a_file(built: dict) -> None:
    meta = _metadata(built["first"], "inventory/demand_scenario")
    assert meta["narrative"].startswith("A 10% price cut for every store and product")
    assert meta["totals"]["scenario_units"] > meta["totals"]["baseline_units"]
    report = json.loads(built["settings"].files.read_text(meta["report"]))
    assert report["by_category"] == meta["projection_rows"]
    assert meta["projection"].startswith("| category |")


def test_a_configured_scenario_runs_as_asked(built: dict) -> None:
    config = {
        "inventory__demand_scenario": {"config": {"price_change_pct": 0, "demand_shock_pct": -20}}
    }
    result = _materialize(
        built["settings"], built["instance"], "inventory/demand_scenario", config=config
    )
    assert result.success
    totals = _metadata(result, "inventory/demand_scenario")["totals"]
    assert totals["units_change_pct"] == pytest.approx(-20.0, abs=0.1)


def test_contracts_of_the_prediction_products_validate(demo_contracts: dict[str, Contract]) -> None:
    assert demo_contracts["inventory/demand_forecast"].column_names == [
        "forecast_date",
        "store_id",
        "product_id",
        "predicted_units",
        "lower_units",
        "upper_units",
        "model_version",
    ]
    assert demo_contracts["inventory/replenishment_plan"].column_names == [
        "store_id",
        "product_id",
        "on_hand",
        "forecast_units_lead_time",
        "reorder_qty",
        "stockout_risk",
        "days_of_cover",
        "rationale",
    ]
    assert demo_contracts["inventory/forecast_accuracy"].primary_key == ["forecast_date"]


def test_mesh_scenario_prints_the_projection(built: dict, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from dagster_project.app.cli import app

    monkeypatch.setenv("MESH_HOME", built["settings"].home)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    runner = CliRunner()
    args = ["scenario", "--promotion", "0.2", "--days", "7", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output[result.output.index("{") :])
    assert answer["scenario"] == "a 20%-off promotion for every store and product"
    assert answer["totals"]["units_change_pct"] > 0
    assert "over the next 7 days raises projected units" in answer["narrative"]
    table = runner.invoke(app, ["scenario", "--demand-shock", "10", "--category", "Toys"])
    assert table.exit_code == 0, table.output
    assert "Scenario: a 10% demand rise for category Toys" in table.output
    assert runner.invoke(app, ["scenario"]).exit_code != 0  # no change asked for
