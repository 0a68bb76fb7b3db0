"""Refusing a write before it happens: rows outside the run's days, or rows that break a
blocking row-level rule, fail the run with nothing written (both engines)."""

from collections.abc import Sequence

import dagster as dg
import polars as pl

from dagster_project.core.contracts import Contract
from dagster_project.lake.screening import summary
from dagster_project.lake.storage import DateWindow, day_of
from dagster_project.products.product import CheckFamily, ProductRun, screen_of


def refuse_before_write(
    run: ProductRun, frame: pl.DataFrame, families: Sequence[CheckFamily]
) -> None:
    """Fail the run before the write when rows fall outside its days or break a blocking
    rule (on either engine: Spark's rows are screened staged, before their write)."""
    _within_window(run.contract, frame, run.window)
    refuse_breaking_rows(run, frame, families)


def refuse_breaking_rows(
    run: ProductRun, frame: pl.DataFrame, families: Sequence[CheckFamily]
) -> None:
    """Fail the run before the write when rows break a blocking row-level rule (a derived
    product's transform produced them, or imputation left a required value missing)."""
    violations = screen_of(families, run.lake)(run.contract, frame)
    if violations:
        rows = sum(v.rows for v in violations)
        raise dg.Failure(
            f"{run.contract.key}: nothing written, {rows:,} row(s) break blocking contract "
            f"rules: {summary(violations)}",
            metadata={"violations": dg.MetadataValue.json([v.as_dict() for v in violations])},
        )


def _within_window(contract: Contract, frame: pl.DataFrame, window: DateWindow | None) -> None:
    """Fail before the write when rows fall outside the run's days: they have no
    partition to live in, and a partition overwrite would not replace them."""
    column = contract.partition_column
    if window is None or column is None or column not in frame.columns:
        return
    outside = frame.filter(~window.expr(column).fill_null(False))
    if outside.height:
        days = outside.select(day_of(column))[column].drop_nulls().unique().sort()
        shown = ", ".join(str(d) for d in days.head(3).to_list()) or "null"
        raise dg.Failure(
            f"{contract.key}: {outside.height:,} row(s) with {column} outside the run's days "
            f"{window.start} .. {window.end} (e.g. {shown}); nothing was written. A transform "
            f"returns only the days of its run; data before the product's first day needs "
            f"an earlier `partitionStart` in its contract."
        )
