"""Freshness judged from the data: how old a product's newest event is.

Dagster's freshness policy (products.builder) says when the table was last written; a
table rewritten today with last month's data is still stale. `judge_freshness` is the one
judgement every freshness verdict uses (the `event_freshness` check, the quality score,
the catalog, `mesh status`): it reads the newest value of the product's event-time column
(`Contract.event_time`: the SLA's `element`, a declared `eventTime`, or the partition
column) and compares its age with the contract's freshness SLA. A date counts as the end
of its day. The check is WARN, or ERROR when the SLA says `severity: error`; never
blocking (old data is still correct data). No event-time column, no rows or no event
times is *not judged*, never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl

from dagster_project.core.contracts import Contract
from dagster_project.lake.storage import Lake, TableInfo
from dagster_project.products.product import CheckFamily, FamilyResult, Written

CHECK = "event_freshness"
SEVERITY = {"warning": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


@dataclass(frozen=True)
class FreshnessVerdict:
    """How old a product's data is against its SLA; `fresh` is None when not judged."""

    column: str | None
    max_age: timedelta | None
    newest: date | datetime | None = None
    age: timedelta | None = None

    @property
    def fresh(self) -> bool | None:
        if self.age is None or self.max_age is None:
            return None
        return self.age <= self.max_age

    @property
    def skipped(self) -> str | None:
        """Why it is not judged (None when it is)."""
        if self.max_age is None:
            return "no freshness SLA"
        if self.column is None:
            return "no event-time column (the SLA's element, eventTime or a partition date)"
        if self.newest is None:
            return f"no {self.column} values to judge freshness by"
        return None

    @property
    def label(self) -> str:
        """One word for tables: fresh, stale, not judged or no SLA."""
        if self.max_age is None:
            return "no SLA"
        return {True: "fresh", False: "stale", None: "not judged"}[self.fresh]

    def describe(self) -> str:
        if self.skipped:
            return self.skipped if self.max_age is None else f"not judged: {self.skipped}"
        verdict = "within" if self.fresh else "beyond"
        return (
            f"newest {self.column} {self.newest} is {_age(self.age)} old, {verdict} the SLA "
            f"of {_age(self.max_age)}"
        )

    def score(self) -> tuple[float | None, str]:
        """The quality score's freshness dimension: 1 within the SLA, 0 at twice it."""
        if self.fresh is None:
            return None, self.describe()
        late = self.age - self.max_age
        value = 1.0 if self.fresh else max(0.0, 1 - late / self.max_age)
        return value, self.describe()

    def facts(self) -> dict:
        facts: dict = {"column": self.column}
        if self.max_age is not None:
            facts["max_age_hours"] = round(self.max_age / timedelta(hours=1), 1)
        if self.age is not None:
            facts |= {"newest_event": str(self.newest), "age_hours": round(_hours(self.age), 1)}
        return facts


def judge_freshness(
    contract: Contract, lake: Lake, now: datetime | None = None, info: TableInfo | None = None
) -> FreshnessVerdict:
    """The age of the product's newest event against its SLA, as of `now` (default: now)."""
    sla, column = contract.freshness, contract.event_time
    verdict = FreshnessVerdict(column, sla.max_age if sla else None)
    if sla is None or column is None:
        return verdict
    newest = newest_event(lake, contract, column, info)
    if newest is None:
        return verdict
    age = (now or datetime.now(UTC)) - _as_instant(newest)
    return FreshnessVerdict(column, sla.max_age, newest, age)


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
        sla = contract.freshness
        if sla is None or contract.event_time is None:
            return FamilyResult()
        verdict = judge_freshness(contract, written.lake, info=written.info)
        written.findings[self.name] = verdict  # the quality score judges by the same
        metadata = verdict.facts() | ({"skipped": verdict.skipped} if verdict.skipped else {})
        result = dg.AssetCheckResult(
            asset_key=written.key,
            check_name=CHECK,
            passed=bool(verdict.fresh),
            severity=dg.AssetCheckSeverity.WARN if verdict.skipped else SEVERITY[sla.severity],
            description=verdict.describe(),
            metadata=metadata,
        )
        return FamilyResult([result])


def newest_event(
    lake: Lake, contract: Contract, column: str, info: TableInfo | None = None
) -> date | datetime | None:
    """The newest event time in the product's table (not only the rows just written)."""
    info = info or lake.info(contract.key)
    if info is None or column not in info.columns:
        return None
    return lake.scan(contract.key).select(pl.col(column).max()).collect().item()


def _as_instant(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)  # stored naive as UTC
    return datetime.combine(value + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def _hours(span: timedelta) -> float:
    return span / timedelta(hours=1)


def _age(span: timedelta) -> str:
    hours = _hours(span)
    if hours >= 48:
        return f"{span.days} days"
    return f"{max(hours, 0):.0f} hours" if hours >= 1 else f"{max(span.seconds // 60, 0)} minutes"
