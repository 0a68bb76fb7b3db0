"""What changed in sales: the last 28 days with sales against the 28 days before, for the
whole business and for the regions and categories that moved most; as rows and as a
Markdown narrative (every sentence is a template over the rows' numbers)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from dagster_project import InsightsRun, change_sentence, what_changed

PERIOD_DAYS = 28
TOP_MOVERS = 3
DIMENSIONS = {"region": "region", "category": "category"}
TITLES = {"revenue": "Revenue", "units": "Units sold", "average_price": "Average price"}


def _totals(frame: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    return frame.group_by(["period", *by]).agg(
        revenue=pl.col("net_revenue").sum(), units=pl.col("units").sum().cast(pl.Float64)
    )


def _compare(totals: pl.DataFrame, by: list[str], metrics: list[str]) -> pl.DataFrame:
    """One row per group and metric with this period's and the last period's values."""
    long = totals.unpivot(index=["period", *by], on=metrics, variable_name="metric")
    wide = long.pivot(on="period", index=[*by, "metric"], values="value")
    for period in ("current", "previous"):
        if period not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Float64).alias(period))
    previous = pl.col("previous").fill_null(0.0)
    return wide.select(
        *by,
        "metric",
        value=pl.col("current").fill_null(0.0).round(2),
        previous_value=previous.round(2),
        change_pct=pl.when(previous != 0)
        .then((pl.col("current").fill_null(0.0) / previous - 1) * 100)
        .round(1),
    )


def sales_insights(
    daily_sales: pl.LazyFrame, stores: pl.LazyFrame, products: pl.LazyFrame, *, run: InsightsRun
) -> pl.DataFrame:
    """The insights rows, with sales' anomaly and drift warnings; writes
    reports/insights/sales.md beside them."""
    end = daily_sales.select(pl.col("order_date").max()).collect().item()
    if end is None:
        raise ValueError("no daily sales yet: nothing to compare")
    start = end - timedelta(days=PERIOD_DAYS - 1)
    before = start - timedelta(days=PERIOD_DAYS)
    sales = (
        daily_sales.filter(pl.col("order_date") >= before)
        .join(stores.select("store_id", "region"), on="store_id", how="left")
        .join(products.select("product_id", "category"), on="product_id", how="left")
        .with_columns(period=pl.when(pl.col("order_date") >= start).then(pl.lit("current")))
        .with_columns(pl.col("period").fill_null("previous"))
        .collect()
    )
    headline = _totals(sales, []).with_columns(average_price=pl.col("revenue") / pl.col("units"))
    rows = [
        _compare(headline, [], ["revenue", "units", "average_price"]).with_columns(
            kind=pl.lit("headline"), subject=pl.lit("all")
        )
    ]
    for dimension, column in DIMENSIONS.items():
        movers = _compare(_totals(sales, [column]), [column], ["revenue"])
        movers = movers.drop_nulls("change_pct").sort(
            pl.col("change_pct").abs(), column, descending=[True, False]
        )
        rows.append(
            movers.head(TOP_MOVERS).select(
                pl.exclude(column),
                kind=pl.lit("mover"),
                subject=pl.format(f"{dimension}={{}}", pl.col(column).fill_null("unknown")),
            )
        )
    frame = pl.concat(rows, how="diagonal_relaxed").with_columns(
        period_start=pl.lit(start), period_end=pl.lit(end)
    )
    frame = frame.with_columns(narrative=_narratives(frame))
    columns = frame.select(
        "kind", "subject", "metric", "period_start", "period_end", "value",
        "previous_value", "change_pct", "narrative",
    )  # fmt: skip
    return run.report(columns, what_changed("Sales", frame, start, end))


def _narratives(frame: pl.DataFrame) -> pl.Series:
    texts = []
    for row in frame.iter_rows(named=True):
        title = TITLES[row["metric"]]
        if row["kind"] == "mover":
            title = f"{title} in {row['subject'].replace('=', ' ')}"
        texts.append(change_sentence(title, row["value"], row["previous_value"], row["change_pct"]))
    return pl.Series("narrative", texts, pl.String)
