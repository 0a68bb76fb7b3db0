"""Inventory's model-backed assets: the demand model (a registered MLflow model), the
forecast its champion publishes, and what-if scenarios on it."""

import json
import time
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from dagster_project import (
    FairnessGate,
    Lake,
    MeshResource,
    MLflowResource,
    ProductRun,
    Rows,
    asset_key,
    champion_challenger,
    load_contracts,
    pinned,
    worst_error_gap,
)
from domains.inventory import forecasting, replenishment
from domains.inventory.forecasting import EXPERIMENT, MODEL_NAME, ModelParams
from domains.inventory.scenarios import Scenario, markdown_table, project

CONTRACTS = load_contracts(Path(__file__).parent / "contracts")
DAILY_SALES, PRODUCTS, STOCK, STORES = (
    "sales/daily_sales",
    "inventory/products",
    "inventory/stock_levels",
    "sales/stores",
)
OWNERS = [CONTRACTS["demand_forecast"].owner or "team:inventory-planning"]
REQUIREMENTS = ("mlflow", "scikit-learn", "numpy", "pandas", "threadpoolctl", "cloudpickle")


class DemandModelConfig(dg.Config):
    """Hyperparameters of a training run; `min_improvement` is the relative WAPE margin
    by which a new version must beat the champion to replace it."""

    max_iter: int = ModelParams.max_iter
    learning_rate: float = ModelParams.learning_rate
    max_leaf_nodes: int = ModelParams.max_leaf_nodes
    min_samples_leaf: int = ModelParams.min_samples_leaf
    max_training_rows: int = ModelParams.max_training_rows
    min_improvement: float = 0.0

    def params(self) -> ModelParams:
        fields = self.model_dump(exclude={"min_improvement"})
        return ModelParams(**fields)


@dg.asset(
    key=["inventory", "demand_model"],
    deps=[asset_key(DAILY_SALES), asset_key(PRODUCTS)],
    description=(
        f"Registered MLflow model `{MODEL_NAME}`: units per store, product and day, trained "
        "on daily sales; the `champion` alias moves only when a version beats it on the "
        "same backtest."
    ),
    group_name="inventory",
    kinds={"mlflow", "scikit-learn"},
    owners=OWNERS,
    tags={"domain": "inventory", "model": ""},
    # Retraining is scheduled (weekly, on drift); a mesh without a model trains one as
    # soon as sales arrive.
    automation_condition=(
        dg.AutomationCondition.missing()
        & dg.AutomationCondition.any_deps_updated()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("train when missing and sales arrive"),
)
def demand_model(
    context: dg.AssetExecutionContext,
    config: DemandModelConfig,
    mesh: MeshResource,
    mlflow: MLflowResource,
) -> dg.MaterializeResult:
    sales, products = _read(mesh.lake, DAILY_SALES, PRODUCTS)
    started = time.perf_counter()
    trained = forecasting.train(sales, products, config.params())
    metrics = {
        **trained.metrics,
        "train_s": time.perf_counter() - started,
        "training_rows": trained.training_rows,
    }
    run, version = _log_and_register(mlflow, trained, config, metrics, context.run_id)
    decision = champion_challenger(
        mlflow,
        MODEL_NAME,
        version,
        trained.metrics["wape"],
        lambda champion: _wape_of(champion, trained.backtest),
        metric="wape",
        min_improvement=config.min_improvement,
        log=context.log.warning,
        fairness=_fairness_gate(mesh.lake, trained.backtest),
    )
    context.log.info(f"{MODEL_NAME} v{version}: {decision.reason}")
    return dg.MaterializeResult(
        metadata={
            "mlflow_run": dg.MetadataValue.url(mlflow.run_url(run.experiment_id, run.run_id)),
            "registered_model": dg.MetadataValue.url(mlflow.model_url(MODEL_NAME, version)),
            "model_uri": f"models:/{MODEL_NAME}/{version}",
            "model_version": int(version),
            "champion_version": int(decision.champion_after),
            "decision": "promoted" if decision.promoted else "rejected",
            "decision_reason": decision.reason,
            "champion_wape_before": decision.champion_score,
            "fairness_gate": decision.fairness,
            "worst_segment": decision.worst_segment or "",
            **{k: float(v) for k, v in metrics.items()},
            "backtest_origin": str(trained.origin),
        }
    )


def _log_and_register(
    mlflow: MLflowResource,
    trained: forecasting.TrainedForecast,
    config: DemandModelConfig,
    metrics: dict[str, float],
    dagster_run_id: str,
) -> tuple[Any, str]:
    """One MLflow run (parameters, backtest metrics, the model) and a new registered
    version of it; returns the run's info and the version."""
    from dagster_project import interval_model

    with mlflow.start_run(EXPERIMENT, tags={"dagster_run_id": dagster_run_id}) as run:
        params = {
            **config.model_dump(),
            "backtest_origin": trained.origin,
            "held_out_days": trained.held_out,
        }
        mlflow.log_run(run.info.run_id, params=params, metrics=metrics)
        logged = mlflow.log_pyfunc(
            trained.model,
            "model",
            pip_requirements=pinned(*REQUIREMENTS),
            example=forecasting.model_inputs(trained.backtest.head(5)),
            by_value=[interval_model],
        )
    tags = {"wape": f"{metrics['wape']:.6f}", "backtest_origin": str(trained.origin)}
    version = mlflow.register(MODEL_NAME, logged.model_uri, run.info.run_id, tags)
    return run.info, str(version.version)


def _wape_of(model: Any, backtest: pl.DataFrame) -> float:
    """A (champion's) WAPE on the challenger's backtest rows."""
    predicted = forecasting.score(model, backtest)["prediction"].to_numpy()
    return forecasting.accuracy(backtest["units"].to_numpy(), predicted)["wape"]


def _fairness_gate(lake: Lake, backtest: pl.DataFrame) -> FairnessGate:
    """The forecast's declared segments (store region, product category) judge the
    challenger's backtest, and the champion's on the same rows."""
    forecast = CONTRACTS["demand_forecast"]

    def gap(rows: pl.DataFrame):
        return worst_error_gap(lake, forecast, rows, "units", "prediction")

    return FairnessGate(gap(backtest), lambda champion: gap(forecasting.score(champion, backtest)))


def _read(lake: Lake, *keys: str) -> list[pl.DataFrame]:
    missing = [k for k in keys if not lake.exists(k)]
    if missing:
        raise dg.Failure(f"input(s) {', '.join(missing)} not materialized yet")
    return [lake.read(k) for k in keys]


def demand_forecast(run: ProductRun) -> Rows:
    """The champion's forecast of the next days, with hindcasts of the backtest window."""
    mesh, mlflow = run.resource("mesh"), run.resource("mlflow")
    sales, products = run.read(DAILY_SALES), run.read(PRODUCTS)
    champion = mlflow.version_by_alias(MODEL_NAME)
    if champion is None:
        raise dg.Failure(f"{MODEL_NAME} has no champion yet: materialize inventory/demand_model")
    version = str(champion.version)  # the alias resolved once: rows name the model they used
    model = mlflow.load_version(MODEL_NAME, version)
    ahead = forecasting.score(model, forecasting.future_rows(sales, products))
    frame = forecasting.as_forecast(ahead, version)
    past = _hindcast(mesh, model, sales, products, version)
    return Rows(
        pl.concat([past, frame]),
        {
            "model_version": version,
            "forecast_from": str(frame["forecast_date"].min()),
            "forecast_to": str(frame["forecast_date"].max()),
            "hindcast_days": past["forecast_date"].n_unique(),
        },
    )


def _hindcast(
    mesh: MeshResource, model: Any, sales: pl.DataFrame, products: pl.DataFrame, version: str
) -> pl.DataFrame:
    """The backtest window's days that no forecast covers yet (a new product), forecast
    from before the window, so accuracy can be tracked from the first build."""
    rows = forecasting.held_out_rows(sales, products)
    key = CONTRACTS["demand_forecast"].key
    if mesh.lake.exists(key):
        known = mesh.lake.scan(key).select("forecast_date").unique().collect()["forecast_date"]
        rows = rows.filter(~pl.col("day").is_in(known.implode()))
    if rows.is_empty():
        return pl.DataFrame(schema=CONTRACTS["demand_forecast"].polars_schema)
    return forecasting.as_forecast(forecasting.score(model, rows), version)


AI_RATIONALES = 25  # orders whose rationale a configured AI provider writes (riskiest first)


def replenishment_plan(run: ProductRun) -> Rows:
    """What to reorder where, from the forecast and the stock on hand and on order."""
    lake = run.lake
    plan = replenishment.replenishment_plan(
        lake.scan("inventory/demand_forecast"), lake.scan(STOCK), lake.scan(PRODUCTS)
    )
    provider = run.resource("ai").get_provider(log=run.log)
    plan, written_by = replenishment.explain(plan, provider, AI_RATIONALES)
    extra = {
        "orders": int((plan["reorder_qty"] > 0).sum()),
        "units_to_order": int(plan["reorder_qty"].sum()),
        "rationales_by": written_by,
        **provider.usage_metadata(),
    }
    return Rows(plan, extra)


class ScenarioConfig(dg.Config):
    """A what-if: price change (percent), promotion (discount fraction), demand shock
    (percent), for a category, store or region (none: everywhere), over `days` days."""

    price_change_pct: float = -10.0
    promotion_discount: float = 0.0
    demand_shock_pct: float = 0.0
    category: str | None = None
    store_id: int | None = None
    region: str | None = None
    days: int = forecasting.HORIZON


@dg.asset(
    key=["inventory", "demand_scenario"],
    deps=[asset_key(k) for k in ("inventory/demand_model", DAILY_SALES, PRODUCTS, STOCK, STORES)],
    description=(
        "What-if projection on the champion demand model: units, revenue and stock-outs "
        "under a price change, promotion or demand shock, against the baseline forecast. "
        "Configure it in the launchpad or run `mesh scenario`."
    ),
    group_name="inventory",
    kinds={"mlflow", "polars"},
    owners=OWNERS,
    tags={"domain": "inventory", "meshwork/scenario": ""},
)
def demand_scenario(
    context: dg.AssetExecutionContext,
    config: ScenarioConfig,
    mesh: MeshResource,
    mlflow: MLflowResource,
) -> dg.MaterializeResult:
    scenario = Scenario(**config.model_dump())
    lake = mesh.lake
    sales, products, stores = _read(lake, DAILY_SALES, PRODUCTS, STORES)
    model = mlflow.load(MODEL_NAME)
    rows = forecasting.future_rows(sales, products).join(
        stores.select("store_id", "region"), on="store_id", how="left"
    )
    stock = lake.scan(STOCK).filter(pl.col("snapshot_date") == pl.col("snapshot_date").max())
    projection = project(
        lambda frame: forecasting.score(model, frame)["prediction"], rows, stock.collect(), scenario
    )
    report = _write_report(mesh, context.run_id, projection)
    context.log.info(projection.narrative)
    return dg.MaterializeResult(
        metadata={
            "scenario": f"{scenario.change} for {scenario.scope}",
            "narrative": projection.narrative,
            "projection": dg.MetadataValue.md(markdown_table(projection.by_category)),
            "projection_rows": dg.MetadataValue.json(projection.by_category.to_dicts()),
            "totals": dg.MetadataValue.json(projection.totals),
            "report": dg.MetadataValue.path(report),
        }
    )


def _write_report(mesh: MeshResource, run_id: str, projection) -> str:
    uri = mesh.settings.reports_uri("scenarios", f"{run_id}.json")
    body = {
        "scenario": vars(projection.scenario),
        "narrative": projection.narrative,
        "totals": projection.totals,
        "by_category": projection.by_category.to_dicts(),
    }
    mesh.settings.files.write_text(uri, json.dumps(body, indent=2, default=str) + "\n")
    return uri
