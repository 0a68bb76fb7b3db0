"""Dragracer: contestants lands from its source system; add derived products below."""

from pathlib import Path

from dagster_project import domain_definitions, landing

defs = domain_definitions(
    "dragracer",
    [
        landing("contestants"),
    ],
    contracts=Path(__file__).parent / "contracts",
)
