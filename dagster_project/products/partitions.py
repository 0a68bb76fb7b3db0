"""Where each product's daily partitions start, and their Dagster definition.

A contract may declare the first day (`partitionStart`, a past or a future day). Without
it, a landed product starts at its first landed day, or at the platform's default
(`PARTITION_START`) when its data is newer, so days landed after a location loaded still
have partitions; a derived product starts with the earliest of its partitioned inputs.
Products with the same start share one `PartitionsDefinition` object (and so may share a
run); the refresh splits runs by definition and skips days before an asset's start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from functools import cache

import dagster as dg

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import PARTITION_START, MeshSettings
from dagster_project.lake.landing import first_landed_day
from dagster_project.products.product import Product, is_partitioned


@cache
def daily_partitions(start: date) -> dg.DailyPartitionsDefinition:
    """Daily partitions from `start` up to today (one object per start)."""
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1)


def first_day(partitions_def: dg.PartitionsDefinition) -> date:
    """The first day of a daily partitions definition."""
    return partitions_def.start.date()  # type: ignore[attr-defined]


def last_day(partitions_def: dg.PartitionsDefinition) -> date | None:
    """Its last day (today), or None while its start is in the future."""
    key = partitions_def.get_last_partition_key()
    return date.fromisoformat(key) if key else None


def partition_starts(
    pairs: Sequence[tuple[Product, Contract]],
    settings: MeshSettings,
    foreign: Callable[[str], Contract | None] = lambda key: None,
) -> dict[str, date]:
    """The first day of every partitioned product of `pairs`, by key; `foreign` finds the
    contract of an input another location owns (its start: declared, else landed)."""
    own: Mapping[str, tuple[Contract, tuple[str, ...]]] = {c.key: (c, p.inputs) for p, c in pairs}
    found: dict[str, date | None] = {}

    def start(key: str) -> date | None:
        if key not in found:
            found[key] = PARTITION_START  # a cycle ends here; the builder reports cycles
            contract, inputs = own.get(key) or (foreign(key), ())
            found[key] = _start(contract, inputs, start, settings)
        return found[key]

    return {c.key: start(c.key) or PARTITION_START for _, c in pairs if is_partitioned(c)}


def _start(
    contract: Contract | None,
    inputs: tuple[str, ...],
    start: Callable[[str], date | None],
    settings: MeshSettings,
) -> date | None:
    if contract is None or not is_partitioned(contract):
        return None
    if contract.partition_start is not None:
        return contract.partition_start
    upstream = [day for day in map(start, inputs) if day is not None]
    if upstream:
        return min(upstream)
    return min(first_landed_day(settings, contract) or PARTITION_START, PARTITION_START)
