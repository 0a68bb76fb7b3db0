"""Dragracer's Python product: one row per season, from its episodes and appearances."""

from __future__ import annotations

import polars as pl


def season_summary(episodes: pl.LazyFrame, appearances: pl.LazyFrame) -> pl.LazyFrame:
    """Premiere and finale dates, episodes, queens, eliminations and the winner per season."""
    aired = episodes.group_by("season").agg(
        premiere=pl.col("airdate").min(),
        finale_date=pl.col("airdate").max(),
        episodes=pl.len(),
        specials=pl.col("special").sum(),
    )
    cast = appearances.group_by("season").agg(
        queens=pl.col("contestant").n_unique(),
        eliminations=pl.col("eliminated").sum(),
        challenge_wins=(pl.col("outcome") == "WIN").sum(),
        # the queen ranked 1 (none before the finale has aired)
        winner=pl.col("contestant").filter(pl.col("rank") == 1).first(),
    )
    return aired.join(cast, on="season", how="left").sort("season")
