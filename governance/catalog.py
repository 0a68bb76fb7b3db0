"""Mesh-wide metadata built from every domain's contracts, Delta tables and checks."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from dagster_project import (
    Contract,
    ContractRegistry,
    Lake,
    catalog_fields,
    check_keys,
    evaluate_policies,
    execution_status,
    judge_freshness,
    load_policies,
    policy_status,
)


def check_status(instance: dg.DagsterInstance, contract: Contract) -> tuple[str, list[str]]:
    """The latest verdict of the product's checks: passed, failed or not evaluated; a
    check with too little data to judge is neither passed nor failed."""
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        check_keys(contract)
    )
    statuses = {k.name: execution_status(r) for k, r in latest.items()}
    judged = {k: s for k, s in statuses.items() if s in {"SUCCEEDED", "FAILED"}}
    if not judged:
        return "not evaluated", []
    failed = sorted(k for k, s in judged.items() if s == "FAILED")
    return ("failed" if failed else "passed"), failed


def build_catalog(
    contracts: list[Contract], lake: Lake, instance: dg.DagsterInstance
) -> pl.DataFrame:
    rows = []
    now = datetime.now(UTC)
    for contract in contracts:
        info = lake.info(contract.key)
        status, failed = check_status(instance, contract)
        sla = contract.freshness
        # as old as its newest event, not as old as its last write
        fresh = judge_freshness(contract, lake, now, info) if info else None
        rows.append(
            {
                "product_key": contract.key,
                "domain": contract.domain,
                "product": contract.product,
                "owner": contract.owner,
                "description": contract.description,
                "contract_version": contract.version,
                "columns": ", ".join(f"{c.name}:{c.logical_type}" for c in contract.columns),
                "pii_columns": ", ".join(contract.pii_columns),
                "row_count": info.rows if info else None,
                "delta_version": info.version if info else None,
                "last_update": info.last_update.replace(tzinfo=None) if info else None,
                "freshness_sla_hours": sla.max_age.total_seconds() / 3600 if sla else None,
                "newest_event": str(fresh.newest) if fresh and fresh.newest else None,
                "freshness": fresh.label if fresh else "never built",
                "last_check_status": status,
                "failed_checks": ", ".join(failed),
                "table_uri": lake.uri(contract.key),
                **catalog_fields(lake.settings, contract, fresh),  # explainable quality score
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None)


def build_scorecard(
    contracts: list[Contract], registry: ContractRegistry, lake: Lake | None = None
) -> pl.DataFrame:
    now = datetime.now(UTC).replace(tzinfo=None)
    policies = {p.name: p for p in load_policies()}
    rows = []
    for contract in contracts:
        previous = registry.latest(contract.key)
        if previous is not None and previous.version == contract.version:
            # Already published as is: compare with what was published before it.
            previous = _published_before(registry, contract)
        sample = _sample(lake, contract) if lake is not None else None
        results = evaluate_policies(contract, previous, sample, lake)
        for policy, result in results.items():
            rows.append(
                {
                    "product_key": contract.key,
                    "policy": policy,
                    "domain": contract.domain,
                    "passed": result.passed,
                    "status": policy_status(policies[policy], result),
                    "reason": result.reason,
                    "contract_version": contract.version,
                    "evaluated_at": now,
                }
            )
    return pl.DataFrame(rows)


def _published_before(registry: ContractRegistry, contract: Contract) -> Contract | None:
    versions = [v for v in registry.versions(contract.key) if v != contract.version]
    return registry.load(contract.key, versions[-1]) if versions else None


def _sample(lake: Lake, contract: Contract, rows: int = 500) -> pl.DataFrame | None:
    """Some of the product's rows, for the policies that look at values."""
    return lake.scan(contract.key).head(rows).collect() if lake.exists(contract.key) else None
