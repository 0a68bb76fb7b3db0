"""`governance/access_audit`: the log of every governed read, as a product.

Rows are appended at read time by `dagster_project.access.policy.GovernedReader` (one Delta
commit per read, through the lake API). The asset does what a log needs: it compacts
the small files those appends leave, evaluates the contract rules on the whole table
and reports its statistics (reads, denials, principals, last read).
"""

from __future__ import annotations

import dagster as dg

from dagster_project.access.policy import audit_summary
from dagster_project.checks.policies import (
    ContractRegistry,
    evaluate_policies,
    policy_check_results,
)
from dagster_project.checks.rules import check_results, evaluate_rules
from dagster_project.core.contracts import Contract
from dagster_project.lake.storage import Lake
from dagster_project.products.builder import asset_key, column_schema


def refresh_audit(lake: Lake, contract: Contract) -> dg.MaterializeResult:
    """Compact the audit table and check it; creates it empty when nobody read yet."""
    import polars as pl

    if not lake.exists(contract.key):
        lake.write(contract, pl.DataFrame(schema=contract.polars_schema))
    compaction = lake.table(contract.key).optimize.compact()
    frame = lake.read(contract.key)
    info = lake.info(contract.key)
    outcomes = evaluate_rules(
        contract, frame, lake, table_rows=info.rows, table_columns=lake.column_types(contract.key)
    )
    registry = ContractRegistry(lake.settings)
    policies = evaluate_policies(contract, registry.latest(contract.key), frame.head(500))
    if policies.get("breaking_change") is None or policies["breaking_change"].passed:
        registry.publish(contract)
    summary = audit_summary(lake, contract.key)
    key = asset_key(contract.key)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": info.rows,
            "dagster/uri": info.uri,
            "delta_version": info.version,
            "table_uri": dg.MetadataValue.path(info.uri),
            "files_compacted": int(compaction.get("numFilesRemoved", 0)),
            "dagster/column_schema": column_schema(contract),
            **{f"audit_{k}": v for k, v in summary.items()},
        },
        check_results=check_results(contract, outcomes, key) + policy_check_results(policies, key),
    )
