"""Bounded, stratified samples: the cost of comparing data stays flat as data grows.

Each stratum (a combination of segment values, e.g. channel × region × category) gets
exactly its proportional share of the sample, so the sample keeps the data's mix — a
change of mix still shows — while rare, high-variance strata are not left to chance.
Rows are picked by a seeded hash of their position: deterministic, and no full sort or
shuffle of the data is needed.
"""

from __future__ import annotations

import polars as pl

SEED = 11
_SPAN = 2**32


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
        return frame.collect()
    share = size / rows
    hashed = frame.with_row_index("__row").with_columns(
        __hash=(pl.col("__row").hash(SEED) % _SPAN).cast(pl.Int64)
    )
    if not strata:
        kept = hashed.filter(pl.col("__hash") < int(share * _SPAN))
        return kept.drop("__row", "__hash").collect()
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
    return picked.sort("__row").drop("__row", "__hash", "__rows", "__take", "__cut").collect()
