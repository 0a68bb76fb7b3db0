"""Bounded, stratified samples: the cost of comparing data stays flat as data grows.

Each stratum (a combination of segment values, e.g. channel × region × category) gets
exactly its proportional share of the sample, so the sample keeps the data's mix — a
change of mix still shows — while rare, high-variance strata are not left to chance.
Rows are picked by a seeded hash of their values, not of their position: a Delta table's
files are read in the order they were committed, so the same rows may come in any order,
and a sample (and a model fitted on it) must not depend on that. No full shuffle needed.
"""

from __future__ import annotations

import polars as pl

SEED = 11
_SPAN = 2**32


def row_hash() -> pl.Expr:
    """A seeded hash of each row's values (of the columns of the frame it is used on)."""
    return (pl.struct(pl.all()).hash(SEED) % _SPAN).cast(pl.Int64)


def in_row_order(frame: pl.LazyFrame, share: float = 1.0) -> pl.LazyFrame:
    """About `share` of the rows, in the order of their hash: the same rows in the same
    order however the table's files were listed."""
    hashed = frame.with_columns(__hash=row_hash())
    if share < 1.0:
        hashed = hashed.filter(pl.col("__hash") < int(share * _SPAN))
    return hashed.sort("__hash").drop("__hash")


def stratum_counts(frame: pl.LazyFrame, strata: list[str]) -> pl.DataFrame:
    """Rows per stratum (one pass); a single row counting everything without strata."""
    if not strata:
        return frame.select(__rows=pl.len()).collect()
    return frame.group_by(strata).agg(__rows=pl.len()).collect()


def stratified_sample(
    frame: pl.LazyFrame,
    strata: list[str],
    size: int,
    *,
    counts: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """About `size` rows of `frame`, allocated to strata in proportion to their rows
    (`counts` from `stratum_counts`, when already known, saves a pass)."""
    counts = stratum_counts(frame, strata) if counts is None else counts
    rows = int(counts["__rows"].sum())
    if rows <= size:
        return in_row_order(frame).collect()
    share = size / rows
    if not strata:
        return in_row_order(frame, share).collect()
    hashed = frame.with_columns(__hash=row_hash())
    quotas = (
        counts.lazy()
        .with_columns(__take=(pl.col("__rows") * share).round().clip(lower_bound=1))
        .with_columns(  # pre-filter generously, then keep exactly `__take` rows per stratum
            __cut=((pl.col("__take") * 2 + 8) / pl.col("__rows")).clip(upper_bound=1.0)
        )
    )
    picked = (
        hashed.join(quotas, on=strata, how="inner", nulls_equal=True)
        .filter(pl.col("__hash") < pl.col("__cut") * _SPAN)
        .filter(pl.col("__hash").rank("ordinal").over(strata) <= pl.col("__take"))
    )
    return picked.sort("__hash").drop("__hash", "__rows", "__take", "__cut").collect()
