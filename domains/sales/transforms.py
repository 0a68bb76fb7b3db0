"""How sales turns order lines into its daily view."""

import polars as pl


def daily_sales(order_lines: pl.LazyFrame) -> pl.LazyFrame:
    """Units, net revenue and distinct orders per day, store and product."""
    return order_lines.group_by("order_date", "store_id", "product_id").agg(
        units=pl.col("quantity").sum(),
        net_revenue=pl.col("net_amount").sum().round(2),
        order_count=pl.col("order_id").n_unique(),
    )
