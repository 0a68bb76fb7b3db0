"""How inventory decides what to reorder, per store and product.

Demand over the supplier's lead time is the sum of the daily forecasts (the last
forecast day's rate beyond the 14-day horizon). The forecast's 80% interval gives each
day's spread (its upper bound is the 90th percentile); days add up as independent, so
the safety stock is the root of the summed squares of (upper - predicted): enough for
the 90th percentile of lead-time demand. Whatever on hand and on order do not cover of
demand plus safety stock is ordered; the stock-out risk is the chance that lead-time
demand exceeds on hand plus on order (normal approximation).
"""

from __future__ import annotations

import math

import polars as pl
from pydantic import BaseModel

from dagster_project import AIProvider, Task

Z_90 = 1.2815515655446004  # the 90th percentile of the standard normal
PAIR = ["store_id", "product_id"]


def replenishment_plan(
    demand_forecast: pl.LazyFrame, stock_levels: pl.LazyFrame, products: pl.LazyFrame
) -> pl.DataFrame:
    """One row per store and product of the latest stock count."""
    stock = stock_levels.filter(pl.col("snapshot_date") == pl.col("snapshot_date").max())
    counted = stock.select(pl.col("snapshot_date").max()).collect().item()
    ahead = demand_forecast.filter(pl.col("forecast_date") > counted).with_columns(
        day=(pl.col("forecast_date") - pl.lit(counted)).dt.total_days()
    )
    plan = (
        stock.select(*PAIR, "on_hand", "on_order")
        .join(products.select("product_id", "lead_time_days"), on="product_id", how="left")
        .join(ahead, on=PAIR, how="left")
        .group_by(*PAIR, "on_hand", "on_order", "lead_time_days")
        .agg(_lead_time_demand())
        .with_columns(pl.col("demand", "variance_90").fill_null(0.0))  # no forecast: none sold
        .collect()
    )
    return plan_orders(plan).sort(PAIR)


def _lead_time_demand() -> list[pl.Expr]:
    lead = pl.col("lead_time_days").first().fill_null(0)  # one value per group
    within = pl.col("day") <= lead
    spread = (pl.col("upper_units") - pl.col("predicted_units")).clip(lower_bound=0)
    last_day = pl.col("day") == pl.col("day").max()
    beyond = (lead - pl.col("day").max()).clip(lower_bound=0)
    return [
        # the forecast's last day stands in for the days past its horizon
        (
            pl.col("predicted_units").filter(within).sum()
            + pl.col("predicted_units").filter(last_day).sum() * beyond
        ).alias("demand"),
        ((spread**2).filter(within).sum() + (spread**2).filter(last_day).sum() * beyond).alias(
            "variance_90"
        ),
        pl.col("predicted_units").mean().fill_null(0.0).alias("daily_demand"),
    ]


def plan_orders(plan: pl.DataFrame) -> pl.DataFrame:
    """From lead-time `demand`, its `variance_90` (summed squared spreads), `daily_demand`,
    `on_hand` and `on_order`: the order, the risk, the cover and a sentence on why (the
    product's columns first, then the facts behind them)."""
    decided = [{**row, **order_for(row)} for row in plan.iter_rows(named=True)]
    frame = pl.DataFrame(decided, schema=_SCHEMA) if decided else pl.DataFrame(schema=_SCHEMA)
    return frame.select(
        *PAIR,
        "on_hand",
        pl.col("demand").round(2).alias("forecast_units_lead_time"),
        "reorder_qty",
        "stockout_risk",
        "days_of_cover",
        "rationale",
        "on_order",
        "lead_time_days",
        "safety_stock",
    )


_SCHEMA = {
    "store_id": pl.Int64,
    "product_id": pl.Int64,
    "on_hand": pl.Int64,
    "on_order": pl.Int64,
    "lead_time_days": pl.Int64,
    "demand": pl.Float64,
    "variance_90": pl.Float64,
    "daily_demand": pl.Float64,
    "reorder_qty": pl.Int64,
    "stockout_risk": pl.Float64,
    "days_of_cover": pl.Float64,
    "rationale": pl.String,
    "safety_stock": pl.Float64,
}


def order_for(row: dict) -> dict:
    """The order for one store and product (see the module's docstring)."""
    demand = float(row["demand"] or 0.0)
    safety = math.sqrt(float(row["variance_90"] or 0.0))
    on_hand, on_order = int(row["on_hand"]), int(row["on_order"])
    available = on_hand + on_order
    reorder = max(0, math.ceil(demand + safety - available - 1e-9))
    risk = stockout_risk(demand, safety / Z_90, available)
    daily = float(row["daily_demand"] or 0.0)
    facts = {
        "reorder_qty": reorder,
        "lead_time_days": int(row["lead_time_days"] or 0),
        "lead_time_demand": round(demand, 1),
        "safety_stock": round(safety, 1),
        "on_hand": on_hand,
        "on_order": on_order,
        "stockout_risk": round(risk, 4),
    }
    return {
        "reorder_qty": reorder,
        "safety_stock": round(safety, 2),
        "stockout_risk": round(risk, 4),
        "days_of_cover": round(on_hand / daily, 1) if daily > 0 else None,
        "rationale": rationale(facts),
    }


def stockout_risk(demand: float, sigma: float, available: float) -> float:
    """P(lead-time demand > available) for demand ~ Normal(demand, sigma)."""
    if sigma <= 0:
        return 1.0 if demand > available else 0.0
    z = (available - demand) / sigma
    return 0.5 * math.erfc(z / math.sqrt(2))


def rationale(facts: dict) -> str:
    """One sentence a store manager can act on, from the order's facts (a template)."""
    lead = f"{facts['lead_time_days']}-day lead time"
    need = f"{facts['lead_time_demand']:,.0f} units plus {facts['safety_stock']:,.0f} safety stock"
    stock = f"{facts['on_hand']:,} on hand and {facts['on_order']:,} on order"
    risk = f"{facts['stockout_risk']:.0%} stock-out risk"
    if facts["reorder_qty"] > 0:
        return (
            f"Order {facts['reorder_qty']:,} units: the {lead} needs about {need}, and only "
            f"{stock} are there ({risk} without this order)."
        )
    return f"No order needed: {stock} cover the {need} of the {lead} ({risk})."


# -- rationales from the AI provider ---------------------------------------------------


class Rationale(BaseModel):
    sentence: str


INSTRUCTIONS = (
    "You explain a replenishment recommendation to a store manager in exactly one plain "
    "sentence. Use only the numbers given (units, lead time, safety stock, stock on hand "
    "and on order, stock-out risk as a percentage); state the order quantity first."
)


def explain(plan: pl.DataFrame, provider: AIProvider, top: int) -> tuple[pl.DataFrame, str]:
    """Rationales for the `top` riskiest orders from the provider (the offline provider
    keeps the templates); returns the plan and who wrote its rationales."""
    if provider.name == "offline" or top <= 0:
        return plan, f"offline template ({provider.model})"
    urgent = plan.filter(pl.col("reorder_qty") > 0).sort("stockout_risk", descending=True).head(top)
    written = {}
    for row in urgent.iter_rows(named=True):
        facts = _facts(row)
        task = Task(
            name="replenishment_rationale",
            instructions=INSTRUCTIONS,
            inputs=facts,
            output=Rationale,
            offline=lambda inputs: {"sentence": rationale(inputs)},
            check=lambda answer, qty=row["reorder_qty"]: _problems(answer, qty),
        )
        written[(row["store_id"], row["product_id"])] = provider.generate(task).value.sentence
    if not written:
        return plan, f"offline template ({provider.model} had no order to explain)"
    updates = pl.DataFrame(
        [{"store_id": s, "product_id": p, "written": t} for (s, p), t in written.items()],
        schema={"store_id": pl.Int64, "product_id": pl.Int64, "written": pl.String},
    )
    plan = plan.join(updates, on=PAIR, how="left").with_columns(
        rationale=pl.coalesce("written", "rationale")
    )
    return (
        plan.drop("written"),
        f"{provider.name} ({provider.model}) for the {len(written)} riskiest orders, "
        "offline template for the rest",
    )


def _facts(row: dict) -> dict:
    return {
        k: row[k] for k in ("store_id", "product_id", "reorder_qty", "on_hand", "stockout_risk")
    } | {
        "lead_time_days": row["lead_time_days"],
        "lead_time_demand": row["forecast_units_lead_time"],
        "safety_stock": row["safety_stock"],
        "on_order": row["on_order"],
    }


def _problems(answer: Rationale, reorder_qty: int) -> list[str]:
    problems = []
    if f"{reorder_qty:,}" not in answer.sentence and str(reorder_qty) not in answer.sentence:
        problems.append(f"the sentence does not state the order quantity {reorder_qty}")
    if answer.sentence.count(". ") > 0 or len(answer.sentence) > 400:
        problems.append("more than one sentence")
    return problems
