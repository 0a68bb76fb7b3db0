"""Freshness judged from the data: how old a product's newest event is.

Dagster's freshness policy (products.builder) says when the table was last written; a
table rewritten today with last month's data is still stale. `event_freshness` reads the
newest value of the product's event-time column (`Contract.event_time`: the SLA's
`element`, a declared `eventTime`, or the partition column) and compares its age with the
contract's freshness SLA. A date counts as the end of its day. Severity WARN, or ERROR
when the SLA says `severity: error`; never blocking (old data is still correct data). No
rows or no event times is *not judged* (a WARN failure saying so), never a pass.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl

from dagster_project.core.contracts import Contract
from dagster_project.products.product import CheckFamily, FamilyResult, Written

CHECK = "event_freshness"
SEVERITY = {"warning": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


class EventFreshness(CheckFamily):
    name = "freshness"

    def specs(self, contract: Contract, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
        sla, column = contract.freshness, contract.event_time
        if sla is None or column is None:
            return []
        return [
            dg.AssetCheckSpec(
                CHECK,
                asset=key,
                description=f"The newest {column} is at most {_age(sla.max_age)} old",
                blocking=False,
                metadata={"column": column, "severity": sla.severity},
            )
        ]

    def evaluate(self, written: Written) -> FamilyResult:
        contract = written.contract
        sla, column = contract.freshness, contract.event_time
        if sla is None or column is None:
            return FamilyResult()
        newest = newest_event(written, column)
        facts = {"column": column, "max_age_hours": round(sla.max_age / timedelta(hours=1), 1)}
        if newest is None:
            reason = f"no {column} values in {contract.key} to judge freshness by"
            return FamilyResult([_result(written, False, f"not judged: {reason}", facts, reason)])
        age = datetime.now(UTC) - _as_instant(newest)
        facts |= {"newest_event": str(newest), "age_hours": round(age / timedelta(hours=1), 1)}
        fresh = age <= sla.max_age
        verdict = "within" if fresh else "beyond"
        text = (
            f"newest {column} {newest} is {_age(age)} old, {verdict} the SLA of {_age(sla.max_age)}"
        )
        severity = SEVERITY[sla.severity]
        return FamilyResult([_result(written, fresh, text, facts, severity=severity)])


def newest_event(written: Written, column: str) -> date | datetime | None:
    """The newest event time in the product's table (not only the rows just written)."""
    if written.info is None or column not in written.info.columns:
        return None
    return written.lake.scan(written.contract.key).select(pl.col(column).max()).collect().item()


def _as_instant(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)  # stored naive as UTC
    return datetime.combine(value + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def _age(span: timedelta) -> str:
    hours = span / timedelta(hours=1)
    if hours >= 48:
        return f"{span.days} days"
    return f"{max(hours, 0):.0f} hours" if hours >= 1 else f"{max(span.seconds // 60, 0)} minutes"


def _result(
    written: Written,
    passed: bool,
    description: str,
    facts: dict,
    skipped: str | None = None,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN,
) -> dg.AssetCheckResult:
    metadata = {**facts, **({"skipped": skipped} if skipped else {})}
    return dg.AssetCheckResult(
        asset_key=written.key,
        check_name=CHECK,
        passed=passed,
        severity=severity,
        description=description,
        metadata=metadata,
    )
