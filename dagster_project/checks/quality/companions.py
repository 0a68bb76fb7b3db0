"""The `<domain>/<product>_anomalies` products the platform adds beside a monitored product.

A contract that switches on `anomalyDetection` gets a companion product for triage; its
contract is generated in `companion_contracts` (which reads without Dagster). Its asset
takes the rows the parent's `anomalies` check flagged (scoring them itself when the
parent's table has moved on) and keeps the triage status a person already set.
"""

from collections.abc import Iterable

import dagster as dg
import polars as pl

from dagster_project.checks.quality.anomaly import score_rows, staged_flagged
from dagster_project.checks.quality.companion_contracts import (
    STATUSES,
    SUFFIX,
    anomalies_contract,
    anomalies_document,
    discover_contracts,
    with_companions,
)
from dagster_project.checks.quality.config import quality_config
from dagster_project.core.contracts import Contract
from dagster_project.lake.storage import DateWindow, Lake
from dagster_project.products.product import Product, ProductRun

# Re-exported: the contracts side lives in companion_contracts.
__all__ = [
    "STATUSES",
    "SUFFIX",
    "anomalies_contract",
    "anomalies_document",
    "anomalies_frame",
    "anomalies_product",
    "companion_products",
    "discover_contracts",
    "with_companions",
]


def companion_products(parents: Iterable[Contract]) -> list[Product]:
    """The anomalies product of each of `parents` that switches anomaly detection on."""
    return [anomalies_product(p) for p in parents if quality_config(p).anomaly]


def anomalies_product(parent: Contract) -> Product:
    child = anomalies_contract(parent)

    def build(run: ProductRun) -> pl.DataFrame:
        return anomalies_frame(run.lake, parent, child, run.window)

    return Product(child.product, build=build, inputs=(parent.key,), contract=child)


def anomalies_frame(
    lake: Lake, parent: Contract, child: Contract, window: DateWindow | None
) -> pl.DataFrame:
    """The flagged rows of `parent` in `window`, keeping earlier triage decisions."""
    info = lake.info(parent.key)
    if info is None:
        raise dg.Failure(f"input {parent.key} has not been materialized yet")
    flagged = staged_flagged(lake.settings, parent, window, info.version)
    if flagged is None:  # the parent changed since its check ran: score it here
        part = parent.partition_column
        rows = (
            lake.read(parent.key, window=window, column=part) if window else lake.read(parent.key)
        )
        if rows.is_empty():
            return pl.DataFrame(schema=child.polars_schema)
        flagged = score_rows(lake, parent, quality_config(parent).anomaly, rows, window).flagged
    return _keep_triage(lake, child, flagged, window)


def _keep_triage(lake, child: Contract, flagged: pl.DataFrame, window) -> pl.DataFrame:
    keys = child.primary_key
    # Without a key (its parent has none) an earlier decision names no row to carry over.
    if not keys or not lake.exists(child.key) or flagged.is_empty():
        return flagged
    part = child.partition_column
    existing = (
        lake.scan(child.key, window=window, column=part)
        if window and part
        else lake.scan(child.key)
    )
    earlier = existing.select(
        *keys, pl.col("status").alias("__status"), pl.col("detected_at").alias("__detected")
    ).collect()
    return (
        flagged.join(earlier, on=keys, how="left", maintain_order="left")
        .with_columns(
            status=pl.coalesce("__status", "status"),
            detected_at=pl.coalesce("__detected", "detected_at"),
        )
        .drop("__status", "__detected")
    )
