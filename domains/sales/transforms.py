"""How sales turns order lines into its daily view."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def daily_sales(order_lines: pl.LazyFrame) -> pl.LazyFrame:
    """Units, net revenue and distinct orders per day, store and product."""
    return order_lines.group_by("order_date", "store_id", "product_id").agg(
        units=pl.col("quantity").sum(),
        net_revenue=pl.col("net_amount").sum().round(2),
        order_count=pl.col("order_id").n_unique(),
    )


def daily_sales_spark(order_lines: DataFrame) -> DataFrame:
    """daily_sales on Spark, for when sales runs on the Spark engine (same rows)."""
    from pyspark.sql import functions as F

    return order_lines.groupBy("order_date", "store_id", "product_id").agg(
        F.sum("quantity").alias("units"),
        F.bround(F.sum("net_amount"), 2).alias("net_revenue"),  # polars rounds half to even
        F.countDistinct("order_id").alias("order_count"),
    )
