"""Inventory: the product catalogue and daily stock counts, both landed by suppliers' feeds;
a demand model trained on sales' daily sales, whose champion forecasts the next two
weeks; from the forecast, a replenishment plan; forecasts checked against what sold."""

from pathlib import Path

import dagster as dg

from dagster_project import (
    AIResource,
    MLflowResource,
    Product,
    derived,
    domain_definitions,
    insights,
    landing,
    retrain_on_check_warning,
    weekly_retraining,
)
from domains.inventory.accuracy import forecast_accuracy
from domains.inventory.assets import (
    demand_forecast,
    demand_model,
    demand_scenario,
    replenishment_plan,
)
from domains.inventory.insights import inventory_insights

FORECAST, SALES = "inventory/demand_forecast", "sales/daily_sales"
MODEL = demand_model.key

defs = domain_definitions(
    "inventory",
    [
        landing("products"),
        landing("stock_levels"),
        Product(
            "demand_forecast",
            build=demand_forecast,
            inputs=("inventory/demand_model", SALES, "inventory/products"),
            resources=("mlflow",),
            kinds=("mlflow",),
        ),
        Product(
            "replenishment_plan",
            build=replenishment_plan,
            inputs=(FORECAST, "inventory/stock_levels", "inventory/products"),
            resources=("ai",),
            kinds=("mlflow",),
        ),
        derived("forecast_accuracy", forecast_accuracy, FORECAST, SALES),
        # Stock now against 28 days before, what runs out first, what checks warn of.
        insights(inventory_insights, "inventory/stock_levels", "inventory/products", SALES),
    ],
    contracts=Path(__file__).parent / "contracts",
    assets=[demand_model, demand_scenario],
    schedules=[weekly_retraining("inventory_weekly_retraining", MODEL)],
    sensors=[
        retrain_on_check_warning(
            "inventory_retrain_on_drift",
            dg.AssetCheckKey(dg.AssetKey(SALES.split("/")), "drift"),
            MODEL,
        )
    ],
    resources={"mlflow": MLflowResource(), "ai": AIResource()},
)
