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
