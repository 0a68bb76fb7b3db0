"""Simulated sales history for the demand-model tests: the simulator's landing files
turned into daily sales as the sales domain computes them, cached per process."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date
from functools import cache

import polars as pl

from dagster_project.core.settings import MeshSettings
from dagster_project.lake.storage import Lake
from demo.simulator import simulate
from domains.sales.transforms import daily_sales

START = date(2025, 3, 3)  # a Monday


@dataclass(frozen=True)
class SalesHistory:
    daily_sales: pl.DataFrame
    products: pl.DataFrame
    stores: pl.DataFrame
    stock_levels: pl.DataFrame

    def write(self, lake: Lake, contracts: dict) -> None:
        """Publish the inputs of the inventory models as Delta tables of `lake`."""
        for key, frame in (
            ("sales/daily_sales", self.daily_sales),
            ("sales/stores", self.stores),
            ("inventory/products", self.products),
            ("inventory/stock_levels", self.stock_levels),
        ):
            lake.write(contracts[key], frame)


@cache
def history(days: int = 21, scale: int = 12_000) -> SalesHistory:
    """`days` days of the simulator's retail world from START (seed 42)."""
    with tempfile.TemporaryDirectory(prefix="sales-history-") as home:
        settings = MeshSettings(home=home)
        simulate(settings, days=days, scale=scale, start=START)

        def landed(domain: str, product: str) -> pl.DataFrame:
            return pl.read_parquet(f"{settings.landing_uri(domain, product)}/*.parquet")

        lines = landed("sales", "order_lines")
        return SalesHistory(
            daily_sales=daily_sales(lines.lazy()).collect().sort("order_date", "store_id"),
            products=landed("inventory", "products"),
            stores=landed("sales", "stores"),
            stock_levels=landed("inventory", "stock_levels"),
        )


@cache
def trained(days: int = 21, scale: int = 12_000):
    """The demand model trained on `history(days, scale)` (a TrainedForecast)."""
    from domains.inventory.forecasting import train

    data = history(days, scale)
    return train(data.daily_sales, data.products)
