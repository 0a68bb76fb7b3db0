"""Dragracer: the real RuPaul's Drag Race tables land as files (contestants once, episodes
and appearances daily by air date); a SQL product and a Python product are built on them,
and insights come from the semantic layer alone."""

from pathlib import Path

from dagster_project import derived, domain_definitions, landing, semantic_insights, sql
from domains.dragracer.transforms import season_summary

HERE = Path(__file__).parent

defs = domain_definitions(
    "dragracer",
    [
        landing("contestants"),
        landing("episodes"),
        landing("appearances"),
        sql("contestant_records", HERE / "contestant_records.sql"),
        derived("season_summary", season_summary, "episodes", "appearances"),
        # What changed in the last 28 days with episodes, from semantics.yaml's metrics.
        semantic_insights(HERE / "semantics.yaml"),
    ],
    contracts=HERE / "contracts",
)
