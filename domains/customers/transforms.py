"""How customers turns other domains' order lines into segments."""

import polars as pl

# Segment rules on recency (R) and frequency+monetary (FM) quintile scores, 5 = best.
SEGMENTS = [
    ("champions", (pl.col("r") >= 4) & (pl.col("fm") >= 4)),
    ("loyal", (pl.col("r") >= 3) & (pl.col("fm") >= 3)),
    ("new", (pl.col("r") >= 4) & (pl.col("frequency") == 1)),
    ("potential", pl.col("r") >= 3),
    ("at_risk", pl.col("fm") >= 3),
]


def _quintile(column: str, descending: bool = False) -> pl.Expr:
    ranks = pl.col(column).rank("average", descending=descending)
    return (((ranks - 1) / pl.len()) * 5).floor().cast(pl.Int64) + 1


def customer_segments(order_lines: pl.LazyFrame) -> pl.LazyFrame:
    """Recency, frequency, monetary value, RFM segment and a one-year lifetime value."""
    per_customer = order_lines.group_by("customer_id").agg(
        last_order=pl.col("order_date").max(),
        first_order=pl.col("order_date").min(),
        frequency=pl.col("order_id").n_unique(),
        monetary=pl.col("net_amount").sum().round(2),
    )
    as_of = order_lines.select(pl.col("order_date").max()).collect().item()
    segment = pl.when(SEGMENTS[0][1]).then(pl.lit(SEGMENTS[0][0]))
    for name, rule in SEGMENTS[1:]:
        segment = segment.when(rule).then(pl.lit(name))
    active_days = (pl.lit(as_of) - pl.col("first_order")).dt.total_days() + 1
    return (
        per_customer.with_columns(
            recency_days=(pl.lit(as_of) - pl.col("last_order")).dt.total_days()
        )
        .with_columns(
            r=_quintile("recency_days", descending=True),
            fm=((_quintile("frequency") + _quintile("monetary")) / 2).round(0),
        )
        .with_columns(
            rfm_segment=segment.otherwise(pl.lit("hibernating")),
            lifetime_value=(pl.col("monetary") / pl.max_horizontal(active_days, 30) * 365).round(2),
        )
        .select(
            "customer_id", "recency_days", "frequency", "monetary", "rfm_segment", "lifetime_value"
        )
    )
