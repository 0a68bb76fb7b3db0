"""What changed among customers: active and new customers, revenue by loyalty tier and
the size of each RFM segment, the last 28 days with orders against the 28 days before;
the tiers losing active customers and the value of the at-risk segment; as rows and as a
Markdown narrative. Aggregates only: no customer's name, email, phone or birth date is
read, and no row is about one customer."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from dagster_project import InsightsRun, change_sentence
from domains.customers.transforms import customer_segments

PERIOD_DAYS = 28
TOP_MOVERS = 3
AT_RISK = "at_risk"
COLUMNS = ["kind", "subject", "metric", "period_start", "period_end", "value"]
COLUMNS += ["previous_value", "change_pct", "narrative"]
COUNTS = {"active_customers", "new_customers", "customers"}  # whole numbers in the text
TITLES = {
    "active_customers": "Active customer count",
    "new_customers": "New customer count",
    "revenue_per_customer": "Revenue per active customer",
    "revenue": "Revenue",
    "customers": "Customer count",
    "lifetime_value": "Lifetime value",
}


def _periods(frame: pl.LazyFrame, column: str, start: date, end: date) -> pl.LazyFrame:
    """Rows of the current period and of the one before, labelled in `period`."""
    day, before = pl.col(column), start - timedelta(days=PERIOD_DAYS)
    return frame.filter(day.is_between(before, end)).with_columns(
        period=pl.when(day >= start).then(pl.lit("current")).otherwise(pl.lit("previous"))
    )


def _compare(frame: pl.DataFrame, by: str, **aggs: pl.Expr) -> pl.DataFrame:
    """One row per group and aggregate: its value in this period and in the one before."""
    totals = frame.group_by(by, "period").agg(**{k: e.cast(pl.Float64) for k, e in aggs.items()})
    long = totals.unpivot(index=[by, "period"], variable_name="metric")
    wide = long.pivot(on="period", index=[by, "metric"], values="value")
    for period in ("current", "previous"):
        if period not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Float64).alias(period))
    prefix = "" if by == "all" else f"{by.removeprefix('loyalty_').removeprefix('rfm_')}="
    return wide.select(
        subject=pl.lit(prefix) + pl.col(by).fill_null("unknown"),
        metric="metric",
        value=pl.col("current").fill_null(0.0).round(2),
        previous_value=pl.col("previous").round(2),
    ).sort("subject", "metric")


def _with_narratives(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    previous = pl.col("previous_value")
    frame = frame.with_columns(
        kind=pl.lit(kind),
        change_pct=pl.when(previous != 0).then((pl.col("value") / previous - 1) * 100).round(1),
    )
    texts = []
    for row in frame.iter_rows(named=True):
        title = TITLES[row["metric"]]
        if row["subject"] != "all":
            title = f"{title} in {row['subject'].replace('=', ' ')}"
        change, before = row["change_pct"], row["previous_value"]
        decimals = 0 if row["metric"] in COUNTS else 2
        texts.append(change_sentence(title, row["value"], before, change, decimals=decimals))
    return frame.with_columns(narrative=pl.Series(texts, dtype=pl.String))


def _top(frame: pl.DataFrame, metric: str) -> pl.DataFrame:
    moved = frame.filter(pl.col("metric") == metric, pl.col("change_pct") != 0)
    order = moved.sort(pl.col("change_pct").abs(), "subject", descending=[True, False])
    return order.head(TOP_MOVERS)


def _headline(lines: pl.DataFrame, signups: pl.DataFrame) -> pl.DataFrame:
    both = _compare(
        lines.with_columns(all=pl.lit("all")),
        "all",
        active_customers=pl.col("customer_id").n_unique(),
        revenue=pl.col("net_amount").sum(),
    )
    per = both.pivot(on="metric", index="subject", values=["value", "previous_value"])
    per_customer = per.select(
        "subject",
        metric=pl.lit("revenue_per_customer"),
        value=(pl.col("value_revenue") / pl.col("value_active_customers")).round(2),
        previous_value=(
            pl.col("previous_value_revenue") / pl.col("previous_value_active_customers")
        ).round(2),
    )
    new = signups.select(  # one row even when nobody signed up
        subject=pl.lit("all"),
        metric=pl.lit("new_customers"),
        value=(pl.col("period") == "current").sum().cast(pl.Float64),
        previous_value=(pl.col("period") == "previous").sum().cast(pl.Float64),
    )
    rows = [both.filter(pl.col("metric") == "active_customers"), new, per_customer]
    return _with_narratives(pl.concat(rows, how="vertical_relaxed"), "headline")


def _segments(segments: pl.LazyFrame, order_lines: pl.LazyFrame, start: date) -> pl.DataFrame:
    """Segment sizes and value now (the product) and at the end of the period before
    (the same RFM rules over the order lines up to then)."""
    columns = ["rfm_segment", "lifetime_value"]
    now = segments.select(columns).with_columns(period=pl.lit("current")).collect()
    earlier = order_lines.filter(pl.col("order_date") < start)
    if _any(earlier):
        then = customer_segments(earlier).select(columns).collect()
    else:
        then = now.select(columns).clear()
    then = then.with_columns(period=pl.lit("previous"))
    both = pl.concat([now, then.select(now.columns)], how="vertical_relaxed")
    return _with_narratives(
        _compare(
            both, "rfm_segment", customers=pl.len(), lifetime_value=pl.col("lifetime_value").sum()
        ),
        "mover",
    )


def _at_risk(by_segment: pl.DataFrame) -> pl.DataFrame:
    """The at-risk segment's lifetime value: customers who bought often or spent much,
    but not lately."""
    segment = by_segment.filter(pl.col("subject") == f"segment={AT_RISK}")
    value = segment.filter(pl.col("metric") == "lifetime_value")
    if value.is_empty():
        return value
    count = segment.filter(pl.col("metric") == "customers")["value"].sum()
    row = value.row(0, named=True)
    text = change_sentence(
        "Lifetime value of at-risk customers",
        row["value"],
        row["previous_value"],
        row["change_pct"],
    )
    who = "customer who bought" if count == 1 else "customers who bought"
    text += f" That is {count:,.0f} {who} often or spent much, but not lately."
    return value.with_columns(kind=pl.lit("risk"), narrative=pl.lit(text))


def _any(frame: pl.LazyFrame) -> bool:
    return frame.select(pl.len()).collect().item() > 0


def customers_insights(
    segments: pl.LazyFrame,
    profiles: pl.LazyFrame,
    order_lines: pl.LazyFrame,
    *,
    run: InsightsRun,
) -> pl.DataFrame:
    """The insights rows, with customers' anomaly and drift warnings; writes
    reports/insights/customers.md beside them."""
    end = order_lines.select(pl.col("order_date").max()).collect().item()
    if end is None:
        raise ValueError("no order lines yet: nothing to compare")
    start = end - timedelta(days=PERIOD_DAYS - 1)
    tiers = profiles.select("customer_id", "loyalty_tier")  # never the personal columns
    lines = (
        _periods(
            order_lines.select("customer_id", "order_date", "net_amount"), "order_date", start, end
        )
        .join(tiers, on="customer_id", how="left")
        .collect()
    )
    signups = _periods(profiles.select("signup_date"), "signup_date", start, end).collect()
    by_tier = _with_narratives(
        _compare(
            lines,
            "loyalty_tier",
            revenue=pl.col("net_amount").sum(),
            active_customers=pl.col("customer_id").n_unique(),
        ),
        "mover",
    )
    by_segment = _segments(segments, order_lines, start)
    losing = by_tier.filter((pl.col("metric") == "active_customers") & (pl.col("change_pct") < 0))
    at_risk = _at_risk(by_segment)
    frame = pl.concat(
        [
            _headline(lines, signups),
            _top(by_tier, "revenue"),
            _top(by_segment, "customers"),
            losing.sort("change_pct", "subject").with_columns(kind=pl.lit("risk")),
            at_risk,
        ],
        how="diagonal_relaxed",
    ).with_columns(period_start=pl.lit(start), period_end=pl.lit(end))
    return run.report(frame.select(COLUMNS), _markdown(frame, start, end))


def _markdown(frame: pl.DataFrame, start: date, end: date) -> str:
    lines = [
        "# Customers: what changed",
        "",
        f"The last {PERIOD_DAYS} days ({start} to {end}) against the {PERIOD_DAYS} days before.",
        "",
    ]
    headings = (("headline", "## Headline"), ("mover", "## Top movers"), ("risk", "## Risks"))
    for kind, heading in headings:
        texts = frame.filter(pl.col("kind") == kind)["narrative"].to_list()
        lines += [heading, "", *(f"- {t}" for t in texts or ["None."]), ""]
    return "\n".join(lines)
