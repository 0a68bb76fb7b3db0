"""How inventory closes the loop: yesterday's forecasts against what actually sold."""

import polars as pl


def forecast_accuracy(demand_forecast: pl.LazyFrame, daily_sales: pl.LazyFrame) -> pl.LazyFrame:
    """Per forecast day that has sales data: forecast and actual units of every forecast
    store and product (nothing sold counts as zero), WAPE, bias and interval coverage."""
    sold = daily_sales.select(
        pl.col("order_date").alias("forecast_date"), "store_id", "product_id", "units"
    )
    days = daily_sales.select(
        first=pl.col("order_date").min(), last=pl.col("order_date").max()
    ).collect()
    first, last = days["first"][0], days["last"][0]
    matched = (
        demand_forecast.filter(pl.col("forecast_date").is_between(first, last))
        .join(sold, on=["forecast_date", "store_id", "product_id"], how="left")
        .with_columns(pl.col("units").fill_null(0).cast(pl.Float64))
    )
    error = pl.col("predicted_units") - pl.col("units")
    inside = pl.col("units").is_between(pl.col("lower_units"), pl.col("upper_units"))
    return (
        matched.group_by("forecast_date")
        .agg(
            model_version=pl.col("model_version").max(),
            pairs=pl.len().cast(pl.Int64),
            forecast_units=pl.col("predicted_units").sum().round(3),
            actual_units=pl.col("units").sum(),
            absolute_error=error.abs().sum().round(3),
            bias_units=error.sum().round(3),
            interval_coverage=inside.mean().round(4),
        )
        .with_columns(
            wape=pl.when(pl.col("actual_units") > 0)
            .then(pl.col("absolute_error") / pl.col("actual_units"))
            .round(4),
            bias=pl.when(pl.col("actual_units") > 0)
            .then(pl.col("bias_units") / pl.col("actual_units"))
            .round(4),
        )
        .sort("forecast_date")
    )
