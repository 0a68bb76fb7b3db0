"""What changed in stock: units on hand and stock-outs at the latest count against the
count 28 days before, and the products with the fewest days of cover at the last 28
days' sales pace; as rows and as a Markdown narrative."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from dagster_project import InsightsRun, change_sentence

PERIOD_DAYS = 28
AT_RISK = 5
COLUMNS = ["kind", "subject", "metric", "period_start", "period_end", "value"]
COLUMNS += ["previous_value", "change_pct", "narrative"]


def _stock(stock_levels: pl.LazyFrame, day) -> dict[str, float]:
    counted = stock_levels.filter(pl.col("snapshot_date") == day)
    totals = counted.select(
        on_hand=pl.col("on_hand").sum().cast(pl.Float64),
        stock_outs=(pl.col("on_hand") == 0).sum().cast(pl.Float64),
    )
    return totals.collect().row(0, named=True)


def _headline(stock_levels: pl.LazyFrame, end, earlier) -> list[dict]:
    now = _stock(stock_levels, end)
    before = _stock(stock_levels, earlier) if earlier is not None else {}
    rows = []
    for metric, title in (("on_hand", "Units on hand"), ("stock_outs", "Stock-outs")):
        previous = before.get(metric)
        change = (now[metric] / previous - 1) * 100 if previous else None
        change = round(change, 1) if change is not None else None
        text = change_sentence(title, now[metric], previous, change, decimals=0)  # counts
        rows.append(dict(kind="headline", subject="all", metric=metric, value=now[metric],
                         previous_value=previous, change_pct=change, narrative=text))  # fmt: skip
    return rows


def _at_risk(stock_levels, products, daily_sales, end) -> list[dict]:
    since = end - timedelta(days=PERIOD_DAYS - 1)
    pace = (
        daily_sales.filter(pl.col("order_date") >= since)
        .group_by("product_id")
        .agg(per_day=pl.col("units").sum() / PERIOD_DAYS)
    )
    cover = (
        stock_levels.filter(pl.col("snapshot_date") == end)
        .group_by("product_id")
        .agg(stock=(pl.col("on_hand") + pl.col("on_order")).sum())
        .join(pace, on="product_id")
        .filter(pl.col("per_day") > 0)
        .join(products.select("product_id", "product_name"), on="product_id", how="left")
        .select(
            "product_id",
            pl.col("product_name").fill_null("unknown product"),
            days=(pl.col("stock") / pl.col("per_day")).round(1),
        )
        .sort("days", "product_id")
        .head(AT_RISK)
        .collect()
    )
    return [
        dict(kind="risk", subject=f"product={r['product_id']}", metric="days_of_cover",
             value=r["days"], previous_value=None, change_pct=None,
             narrative=f"{r['product_name']} has {r['days']:,.1f} days of cover at the "
             f"last {PERIOD_DAYS} days' sales pace (stock on hand and on order).")
        for r in cover.iter_rows(named=True)
    ]  # fmt: skip


def inventory_insights(
    stock_levels: pl.LazyFrame,
    products: pl.LazyFrame,
    daily_sales: pl.LazyFrame,
    *,
    run: InsightsRun,
) -> pl.DataFrame:
    """The insights rows, with inventory's anomaly and drift warnings; writes
    reports/insights/inventory.md beside them."""
    days = stock_levels.select(pl.col("snapshot_date").unique()).collect().to_series()
    if days.is_empty():
        raise ValueError("no stock counts yet")
    end = days.max()
    earlier_days = days.filter(days <= end - timedelta(days=PERIOD_DAYS))
    earlier = earlier_days.max() if not earlier_days.is_empty() else None
    rows = _headline(stock_levels, end, earlier) + _at_risk(
        stock_levels, products, daily_sales, end
    )
    schema = {"value": pl.Float64, "previous_value": pl.Float64, "change_pct": pl.Float64}
    frame = pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None)
    frame = frame.with_columns(period_start=pl.lit(earlier or end), period_end=pl.lit(end))
    return run.report(frame.select(COLUMNS), _markdown(frame, earlier, end))


def _markdown(frame: pl.DataFrame, earlier, end) -> str:
    compared = f"against {earlier}" if earlier else "(no count 28 days before to compare)"
    lines = ["# Inventory: what changed", "", f"Stock counted on {end} {compared}.", ""]
    for kind, heading in (("headline", "## Headline"), ("risk", "## Stock-out risks")):
        texts = frame.filter(pl.col("kind") == kind)["narrative"].to_list()
        lines += [heading, "", *(f"- {t}" for t in texts or ["None."]), ""]
    return "\n".join(lines)
