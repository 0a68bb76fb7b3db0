"""Dragracer: the real RuPaul's Drag Race tables land as files (contestants once, episodes
and appearances daily by air date); a SQL product and a Python product are built on them."""

from pathlib import Path

from dagster_project import derived, domain_definitions, landing, sql
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
    ],
    contracts=HERE / "contracts",
)
