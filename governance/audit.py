"""`governance/access_audit`: the log of every governed read, as a product.

Rows are appended at read time by `dagster_project.access.policy.GovernedReader` (one Delta
commit per read, through the lake API). The asset does what a log needs: it compacts
the small files those appends leave, has the contract rules and policies judge the whole
table and reports its statistics (reads, denials, principals, last read).
"""

from __future__ import annotations

import polars as pl

from dagster_project import ProductRun, Rows, audit_summary


def refresh_audit(run: ProductRun) -> Rows:
    """Compact the audit table; creates it empty when nobody read yet."""
    lake, contract = run.lake, run.contract
    if not lake.exists(contract.key):
        lake.write(contract, pl.DataFrame(schema=contract.polars_schema))
    compaction = lake.table(contract.key).optimize.compact()
    summary = audit_summary(lake, contract.key)
    metadata = {
        "files_compacted": int(compaction.get("numFilesRemoved", 0)),
        **{f"audit_{k}": v for k, v in summary.items()},
    }
    return Rows(lake.read(contract.key), metadata, written=True)
