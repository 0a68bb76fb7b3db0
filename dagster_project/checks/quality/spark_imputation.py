"""Imputation on the Spark engine: the local engine's model, fed from Spark DataFrames."""

import polars as pl
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from dagster_project.checks.quality.config import flag_column, quality_config
from dagster_project.checks.quality.imputation import MAX_TRAINING_ROWS, SEED, Imputation, impute
from dagster_project.core.contracts import Contract
from dagster_project.engines.spark import SEQUENCE

GAP = "_mesh_gap"  # a row missing an imputable value


def impute_on_spark(frame: DataFrame, contract: Contract) -> tuple[DataFrame, list[Imputation]]:
    """The local engine's imputation (`quality.imputation.impute`, the same model and
    code) on a Spark DataFrame: the rows missing an imputable value and the training rows
    (every complete row up to MAX_TRAINING_ROWS, else a seeded sample of about that many)
    go to the driver in landing order, the missing rows come back filled and flagged; the
    other rows stay on the executors with their flags false. Up to MAX_TRAINING_ROWS
    complete rows the result is the local engine's, row for row."""
    columns = tuple(c for c in quality_config(contract).imputable if c in frame.columns)
    if not columns:
        return frame, []
    gap = F.lit(False)
    for column in columns:
        gap = gap | F.col(column).isNull()
    frame = frame.withColumn(GAP, gap)
    counts = frame.agg(F.sum(F.col(GAP).cast("long")), F.count(F.lit(1))).first()
    gaps, rows = counts[0] or 0, counts[1]
    if not gaps:
        done = [Imputation(c, 0, "none", (), 0, 0.0) for c in columns]
        return _flagged(frame.drop(GAP), columns), done
    rest = _flagged(frame.filter(~F.col(GAP)).drop(GAP), columns)
    filled, imputations = _impute_on_driver(frame, contract, columns, rows - gaps)
    back = filled.filter(pl.col(GAP)).select(rest.columns).to_arrow()
    missing = frame.sparkSession.createDataFrame(back, schema=rest.schema)
    return rest.unionByName(missing), imputations


def _impute_on_driver(
    frame: DataFrame, contract: Contract, columns: tuple[str, ...], complete: int
) -> tuple[pl.DataFrame, list[Imputation]]:
    sampled = F.lit(True)
    if complete > MAX_TRAINING_ROWS:
        sampled = F.rand(SEED) < MAX_TRAINING_ROWS / complete
    order = [SEQUENCE] if SEQUENCE in frame.columns else contract.primary_key
    rows = frame.filter(F.col(GAP) | sampled).orderBy(*order).toArrow()
    return impute(contract, pl.from_arrow(rows), columns)


def _flagged(frame: DataFrame, columns: tuple[str, ...]) -> DataFrame:
    """`<column>_imputed` false where the value is present (kept where it was set)."""
    for column in columns:
        flag = flag_column(column)
        present = F.when(F.col(column).isNotNull(), F.lit(False))
        value = F.coalesce(F.col(flag), present) if flag in frame.columns else present
        frame = frame.withColumn(flag, value)
    return frame
