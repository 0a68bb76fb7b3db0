"""Compute engines for product transforms: `local` (polars/DuckDB) or `spark` (PySpark).

The engine is configuration, not code: a contract's customProperty `engine`, or the
environment variable `MESH_ENGINE_<DOMAIN>` for a whole domain (a deployment choice).
Products, contracts, checks and lineage are the same on either engine.
"""

from __future__ import annotations

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import Settings

ENGINES = ("local", "spark")


def engine_for(contract: Contract) -> str:
    """The engine a product runs on: the domain's environment override, then the
    contract's `engine` customProperty, then `local`."""
    configured = Settings.from_env().engines.get(contract.domain.lower())
    engine = str(configured or contract.custom("engine", "local")).lower()
    if engine not in ENGINES:
        raise ValueError(f"{contract.key}: engine must be one of {ENGINES}, not {engine!r}")
    return engine


def spark_refusal(contract: Contract) -> str | None:
    """Why the Spark engine cannot write this product (None: it can). Spark writes a day
    as a Delta partition; a timestamp's day is a range of rows that the local engine
    replaces (no Delta partition per instant)."""
    part = contract.partition_column
    if part is None or contract.partition_by:
        return None
    return (
        f"{contract.key}: its daily partition column {part} is a timestamp, which the Spark "
        f"engine cannot partition by yet; run the product on the local engine (no "
        f"`engine: spark` in its contract, no MESH_ENGINE_{contract.domain.upper()}=spark), "
        f"or partition it by a date column"
    )
