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

import numpy as np
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
        .with_columns(weight=_lead_time_weight())
        .group_by(*PAIR, "on_hand", "on_order", "lead_time_days")
        .agg(
            demand=(pl.col("weight") * pl.col("predicted_units")).sum(),
            variance_90=(pl.col("weight") * _spread() ** 2).sum(),
            daily_demand=pl.col("predicted_units").mean().fill_null(0.0),
        )
        .with_columns(pl.col("demand", "variance_90").fill_null(0.0))  # no forecast: none sold
        .collect()
    )
    return plan_orders(plan).sort(PAIR)


def _lead_time_weight() -> pl.Expr:
    """How many lead-time days each forecast day stands for: 1 within the lead time, and
    the forecast's last day also for every day past its horizon (plain sums per pair
    then give demand and variance: no filter per group, fast over a million pairs)."""
    lead = pl.col("lead_time_days").fill_null(0)
    last = pl.col("day").max().over(PAIR)
    beyond = (lead - last).clip(lower_bound=0)
    return (pl.col("day") <= lead).cast(pl.Float64) + (pl.col("day") == last) * beyond


def _spread() -> pl.Expr:
    return (pl.col("upper_units") - pl.col("predicted_units")).clip(lower_bound=0)


def plan_orders(plan: pl.DataFrame) -> pl.DataFrame:
    """From lead-time `demand`, its `variance_90` (summed squared spreads), `daily_demand`,
    `on_hand` and `on_order`: the order, the risk, the cover and a sentence on why (the
    product's columns first, then the facts behind them).

    Column arithmetic in floats, never a Python int per row: an order too large for an
    integer column (a forecast gone astronomically wrong) is left empty, for the
    contract's not-null check to stop, instead of failing the whole plan with an
    OverflowError; and a million rows take a second, not a minute."""
    available = pl.col("on_hand") + pl.col("on_order")
    safety = pl.col("variance_90").fill_null(0.0).sqrt()
    need = (pl.col("demand").fill_null(0.0) + safety - available - 1e-9).ceil()
    daily = pl.col("daily_demand").fill_null(0.0)
    decided = plan.with_columns(
        reorder_qty=need.clip(lower_bound=0).cast(pl.Int64, strict=False),
        safety_stock=safety.round(2),
        stockout_risk=_stockout_risk(plan, safety, available).round(4),
        days_of_cover=pl.when(daily > 0).then((pl.col("on_hand") / daily).round(1)),
        lead_time_days=pl.col("lead_time_days").fill_null(0),
    )
    return decided.with_columns(rationale=_rationales(decided)).select(
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


def _stockout_risk(plan: pl.DataFrame, safety: pl.Expr, available: pl.Expr) -> pl.Series:
    """P(lead-time demand > available) for demand ~ Normal(demand, safety / Z_90); with no
    spread, 1 when demand exceeds what is available, else 0."""
    columns = plan.select(
        mean=pl.col("demand").fill_null(0.0), sigma=safety / Z_90, free=available.cast(pl.Float64)
    )
    mean, sigma, free = (columns[c].to_numpy() for c in ("mean", "sigma", "free"))
    spread = sigma > 0
    z = (free - mean) / np.where(spread, sigma, 1.0) / math.sqrt(2)
    risk = 0.5 * _ERFC(z).astype(float)
    return pl.Series(np.where(spread, risk, (mean > free).astype(float)))


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def _rationales(plan: pl.DataFrame) -> pl.Series:
    facts = plan.select(
        "reorder_qty",
        "lead_time_days",
        "on_hand",
        "on_order",
        "stockout_risk",
        lead_time_demand=pl.col("demand").fill_null(0.0),
        safety_stock=pl.col("variance_90").fill_null(0.0).sqrt(),
    )
    return sentences(facts).alias("rationale")


def rationale(facts: dict) -> str:
    """One sentence a store manager can act on, from the order's facts (a template)."""
    return sentences(pl.DataFrame([facts]))[0]


def sentences(facts: pl.DataFrame) -> pl.Series:
    """`rationale` of every row of `facts` (columns: the keys of `rationale`'s facts), each
    number formatted once per distinct value."""
    frame = facts.select(
        order="reorder_qty",
        qty=_thousands(facts["reorder_qty"]),
        lead=pl.col("lead_time_days").cast(pl.String),
        demand=_thousands(_whole(facts["lead_time_demand"])),
        safety=_thousands(_whole(facts["safety_stock"])),
        on_hand=_thousands(facts["on_hand"]),
        on_order=_thousands(facts["on_order"]),
        risk=_whole(facts["stockout_risk"] * 100).cast(pl.String) + "%",
    )
    need = pl.format("{} units plus {} safety stock", "demand", "safety")
    stock = pl.format("{} on hand and {} on order", "on_hand", "on_order")
    ordered = pl.format(
        "Order {} units: the {}-day lead time needs about {}, and only {} are there "
        "({} stock-out risk without this order).",
        *("qty", "lead", need, stock, "risk"),
    )
    covered = pl.format(
        "No order needed: {} cover the {} of the {}-day lead time ({} stock-out risk).",
        *(stock, need, "lead", "risk"),
    )
    sentence = (
        pl.when(pl.col("order").is_null())
        .then(pl.lit("No order computed: the forecast is too large to be a number of units."))
        .when(pl.col("order") > 0)
        .then(ordered)
        .otherwise(covered)
    )
    return frame.select(sentence).to_series()


def _whole(values: pl.Series) -> pl.Series:
    """Whole numbers, rounded half to even as `{:,.0f}` and `{:.0%}` round."""
    return pl.Series(np.rint(values.cast(pl.Float64).to_numpy())).cast(pl.Int64, strict=False)


def _thousands(values: pl.Series) -> pl.Series:
    """Whole numbers as `{:,}` writes them (1,234,567): each distinct value formatted once
    (counts and orders repeat a lot; a million rows hold a few thousand values)."""
    distinct = values.unique().drop_nulls()
    words = pl.Series([f"{v:,}" for v in distinct.to_list()], dtype=pl.String)
    return values.replace_strict(distinct, words, default=None, return_dtype=pl.String)


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
