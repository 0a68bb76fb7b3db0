"""What-if scenarios on the demand model: a price change, a promotion or a demand shock
for a category, a store or a region, projected against the baseline forecast.

The scenario changes what the model sees for the rows in scope — the price relative to
list price and the promotion flag — and scales demand by the shock afterwards. Revenue
is units at the planned net price; a store and product runs out when its projected
demand over the window exceeds what it has on hand and on order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from domains.inventory.forecasting import HORIZON, PAIR


@dataclass(frozen=True)
class Scenario:
    """A change and where it applies (no scope: everywhere)."""

    price_change_pct: float = 0.0  # -10: a 10% price cut
    promotion_discount: float = 0.0  # 0.2: a 20%-off promotion over the window
    demand_shock_pct: float = 0.0  # +30: demand 30% above the forecast
    category: str | None = None
    store_id: int | None = None
    region: str | None = None
    days: int = HORIZON

    def __post_init__(self) -> None:
        if not 1 <= self.days <= HORIZON:
            raise ValueError(f"days must be within 1..{HORIZON}")
        if not 0 <= self.promotion_discount < 1:
            raise ValueError("promotion_discount is a fraction within 0..1")
        if self.price_change_pct <= -100:
            raise ValueError("a price cannot fall by 100% or more")

    @property
    def change(self) -> str:
        parts = []
        if self.price_change_pct:
            parts.append(f"a {abs(self.price_change_pct):g}% price {_cut(self.price_change_pct)}")
        if self.promotion_discount:
            parts.append(f"a {self.promotion_discount:.0%}-off promotion")
        if self.demand_shock_pct:
            direction = "rise" if self.demand_shock_pct > 0 else "drop"
            parts.append(f"a {abs(self.demand_shock_pct):g}% demand {direction}")
        return " with ".join(parts) or "no change"

    @property
    def scope(self) -> str:
        parts = [
            *([f"category {self.category}"] if self.category else []),
            *([f"store {self.store_id}"] if self.store_id is not None else []),
            *([f"the {self.region} region"] if self.region else []),
        ]
        return " in ".join(parts) or "every store and product"

    def in_scope(self) -> pl.Expr:
        condition = pl.lit(True)
        if self.category:
            condition &= pl.col("category") == self.category
        if self.store_id is not None:
            condition &= pl.col("store_id") == self.store_id
        if self.region:
            condition &= pl.col("region") == self.region
        return condition


def _cut(pct: float) -> str:
    return "cut" if pct < 0 else "rise"


def apply(rows: pl.DataFrame, scenario: Scenario) -> pl.DataFrame:
    """The feature rows as the model would see them under the scenario."""
    scoped = scenario.in_scope()
    price = 1 - pl.col("discount")  # net price relative to list price
    if scenario.price_change_pct:
        price = pl.when(scoped).then(price * (1 + scenario.price_change_pct / 100)).otherwise(price)
    if scenario.promotion_discount:
        promoted = price * (1 - scenario.promotion_discount)
        price = pl.when(scoped).then(promoted).otherwise(price)
    changed = rows.with_columns(discount=1 - price)
    if scenario.price_change_pct or scenario.promotion_discount:  # the scenario sets prices
        changed = changed.with_columns(
            price_known=pl.when(scoped).then(pl.lit(1, pl.Int8)).otherwise(pl.col("price_known"))
        )
    if scenario.promotion_discount:
        changed = changed.with_columns(
            promotion=pl.when(scoped).then(pl.lit(1, pl.Int8)).otherwise(pl.col("promotion"))
        )
    return changed


@dataclass
class Projection:
    """Baseline against scenario, per category and in total, with a narrative."""

    scenario: Scenario
    by_category: pl.DataFrame
    totals: dict[str, float]
    narrative: str


def project(
    predict: Callable[[pl.DataFrame], pl.Series],
    rows: pl.DataFrame,
    stock: pl.DataFrame,
    scenario: Scenario,
) -> Projection:
    """Project units, revenue and stock-outs over the scenario's window. `rows` are the
    forecast's feature rows joined with `category`, `region` and `list_price`; `stock`
    has `on_hand` and `on_order` per store and product; `predict` gives expected units."""
    window = rows.filter(pl.col("days_ahead") <= scenario.days)
    changed = apply(window, scenario)
    shock = pl.when(scenario.in_scope()).then(1 + scenario.demand_shock_pct / 100).otherwise(1.0)
    both = window.select(*PAIR, "category", "region", "list_price", "discount").with_columns(
        baseline_units=predict(window),
        scenario_units=predict(changed) * changed.select(shock).to_series(),
        scenario_discount=changed["discount"],
    )
    both = both.with_columns(
        baseline_revenue=pl.col("baseline_units") * pl.col("list_price") * (1 - pl.col("discount")),
        scenario_revenue=pl.col("scenario_units")
        * pl.col("list_price")
        * (1 - pl.col("scenario_discount")),
    )
    pairs = _stockouts(both, stock)
    by_category = _summarise(pairs, "category").sort("category")
    totals = _total(pairs)
    in_scope = _total(pairs.filter(scenario.in_scope()))
    return Projection(scenario, by_category, totals, narrative(scenario, in_scope, totals))


def _total(pairs: pl.DataFrame) -> dict[str, float]:
    return _summarise(pairs.with_columns(all=pl.lit("all")), "all").drop("all").row(0, named=True)


def _stockouts(both: pl.DataFrame, stock: pl.DataFrame) -> pl.DataFrame:
    per_pair = both.group_by(*PAIR, "category", "region").agg(
        pl.col("baseline_units", "scenario_units", "baseline_revenue", "scenario_revenue").sum()
    )
    available = (pl.col("on_hand") + pl.col("on_order")).fill_null(0)
    return per_pair.join(
        stock.select(*PAIR, "on_hand", "on_order"), on=PAIR, how="left"
    ).with_columns(
        baseline_stockout=pl.col("baseline_units") > available,
        scenario_stockout=pl.col("scenario_units") > available,
        baseline_short=(pl.col("baseline_units") - available).clip(lower_bound=0),
        scenario_short=(pl.col("scenario_units") - available).clip(lower_bound=0),
    )


def _summarise(pairs: pl.DataFrame, by: str) -> pl.DataFrame:
    return (
        pairs.group_by(by)
        .agg(
            baseline_units=pl.col("baseline_units").sum().round(1),
            scenario_units=pl.col("scenario_units").sum().round(1),
            baseline_revenue=pl.col("baseline_revenue").sum().round(2),
            scenario_revenue=pl.col("scenario_revenue").sum().round(2),
            baseline_stockouts=pl.col("baseline_stockout").sum().cast(pl.Int64),
            scenario_stockouts=pl.col("scenario_stockout").sum().cast(pl.Int64),
            scenario_units_short=pl.col("scenario_short").sum().round(1),
        )
        .with_columns(
            units_change_pct=_pct("scenario_units", "baseline_units"),
            revenue_change_pct=_pct("scenario_revenue", "baseline_revenue"),
        )
    )


def _pct(new: str, old: str) -> pl.Expr:
    return pl.when(pl.col(old) > 0).then((pl.col(new) / pl.col(old) - 1) * 100).round(1)


def narrative(scenario: Scenario, scope: dict[str, float], totals: dict[str, float]) -> str:
    """A short paragraph: what the change does where it applies, then to the whole."""
    more = scope["scenario_stockouts"] - scope["baseline_stockouts"]
    stockouts = (
        f"{more:,} more store-product pairs would run out of stock"
        if more > 0
        else f"{-more:,} fewer store-product pairs would run out of stock"
        if more < 0
        else f"stock-outs stay at {scope['scenario_stockouts']:,} store-product pairs"
    )
    text = (
        f"{scenario.change.capitalize()} for {scenario.scope} over the next {scenario.days} "
        f"days {_moves('projected units', scope, 'units')} and "
        f"{_moves('revenue', scope, 'revenue')}; {stockouts} "
        f"({scope['scenario_units_short']:,.0f} units short)."
    )
    if scope != totals:
        units, revenue = totals["units_change_pct"] or 0.0, totals["revenue_change_pct"] or 0.0
        text += f" Across the assortment: units {units:+.1f}%, revenue {revenue:+.1f}%."
    return text


def _moves(label: str, summary: dict[str, float], measure: str) -> str:
    pct = summary[f"{measure}_change_pct"] or 0.0
    old, new = summary[f"baseline_{measure}"], summary[f"scenario_{measure}"]
    if abs(pct) < 0.05:
        return f"leaves {label} unchanged ({old:,.0f})"
    verb = "raises" if pct > 0 else "lowers"
    return f"{verb} {label} by {abs(pct):.1f}% ({old:,.0f} → {new:,.0f})"


def markdown_table(frame: pl.DataFrame) -> str:
    """A frame as a Markdown table (for Dagster's metadata and the report)."""
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = [
        "| "
        + " | ".join(
            "" if v is None else f"{v:,}" if isinstance(v, int | float) else str(v) for v in row
        )
        + " |"
        for row in frame.iter_rows()
    ]
    return "\n".join([head, rule, *body])
