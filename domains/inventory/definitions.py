"""Inventory: the product catalogue and daily stock counts, both landed by suppliers' feeds."""

from pathlib import Path

from dagster_project import domain_definitions, landing

defs = domain_definitions(
    "inventory",
    [
        landing("products"),
        landing("stock_levels"),
    ],
    contracts=Path(__file__).parent / "contracts",
)
