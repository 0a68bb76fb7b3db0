"""What quality intelligence a contract switches on, read from its custom properties.

Contract level (`customProperties` of the contract):

```yaml
customProperties:
  - property: anomalyDetection
    value: {groups: [store_id, product_id, channel], historyDays: 28}
  - property: drift
    value: {referenceDays: 28, segments: [channel, stores.region, inventory.products.category]}
```

Column level: `customProperties: [{property: imputable, value: true}]` on a property, with a
boolean `<column>_imputed` property beside it. Derivations come from ODCS `transformLogic`.
`value: true` switches a feature on with its defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

from dagster_project.core.contracts import Column, Contract, ContractError

ANOMALY_PROPERTY = "anomalyDetection"
DRIFT_PROPERTY = "drift"
IMPUTABLE_PROPERTY = "imputable"
DETECTORS = ("robust_z", "isolation_forest", "ecod")
NUMERIC = {"integer", "number"}


@dataclass(frozen=True)
class AnomalyConfig:
    """Anomaly detection on a product's new rows (see `quality.anomaly`)."""

    groups: tuple[str, ...] = ()  # per-group robust z-scores: values odd only in context
    columns: tuple[str, ...] = ()  # numeric columns to watch; default: every measure
    historyDays: int = 28  # the detector is fitted on this much history before new rows
    refitDays: int = 7  # refit once history has moved on by this many days
    profileRows: int = 1_000_000  # history rows the usual values are learnt from
    trainingRows: int = 40_000  # of those, rows the detectors are fitted and judged on
    minRows: int = 400  # fewer rows to learn what is usual from: not judged
    maxAnomalyRate: float = 0.002  # the floor of the tolerated share of flagged rows...
    calibrationPartitions: int = 7  # ...raised to the usual share of this many earlier ones
    detectors: tuple[str, ...] = DETECTORS
    top: int = 10  # explained anomalies in the check's metadata


@dataclass(frozen=True)
class DriftConfig:
    """Drift of the newest partition against a reference (see `quality.drift`)."""

    referenceDays: int = 28  # the days before the newest partition...
    referenceVersion: int | None = None  # ...or a pinned Delta version of the table
    sameWeekday: bool = False  # compare with the same weekday only (weekly seasonality)
    columns: tuple[str, ...] = ()  # default: measures and low-cardinality attributes
    segments: tuple[str, ...] = ()  # where to look for the root cause
    sampleRows: int = 10_000  # per side, stratified: the cost stays flat as data grows
    # fewer rows on either side: not judged. Two samples of the same data differ by about
    # 1.2/sqrt(n) in Wasserstein distance (normed), so n below ~1,000 could pass the 0.1
    # threshold by chance; small partitions are pooled into periods of at least minRows
    minRows: int = 1_000
    maxPeriods: int = 14  # a refresh window is judged in at most this many periods
    numMethod: str = "wasserstein"  # Evidently stat tests; effect sizes, so verdicts do
    catMethod: str = "jensenshannon"  # not depend on the sample size
    numThreshold: float = 0.1
    catThreshold: float = 0.1


@dataclass(frozen=True)
class QualityConfig:
    anomaly: AnomalyConfig | None = None
    drift: DriftConfig | None = None
    imputable: tuple[str, ...] = field(default=())

    @property
    def enabled(self) -> bool:
        return bool(self.anomaly or self.drift or self.imputable)


def flag_column(column: str) -> str:
    return f"{column}_imputed"


def is_measure(column: Column) -> bool:
    """A numeric column that measures something (not a key, id, partition or flag)."""
    return (
        column.logical_type in NUMERIC
        and not column.primary_key
        and not column.partitioned
        and not column.unique
        and not column.references
        and not column.name.endswith(("_id", "_imputed"))
    )


def is_attribute(column: Column) -> bool:
    """A low-cardinality attribute: a string with accepted values, or a boolean."""
    return (
        not column.primary_key
        and not column.name.endswith("_imputed")
        and (
            column.logical_type == "boolean"
            or (column.logical_type == "string" and bool(column.accepted_values))
        )
    )


def _error(contract: Contract, where: str, message: str) -> ContractError:
    return ContractError(contract.path or contract.key, where, message)


def _options(contract: Contract, name: str, kind: type, value: Any) -> Any:
    if value is None or value is False:
        return None
    if value is True:
        return kind()
    where = f"customProperties/{name}"
    if not isinstance(value, dict):
        raise _error(contract, where, "expected true or a mapping")
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise _error(
            contract, f"{where}/{unknown[0]}", f"unknown option; known: {', '.join(sorted(known))}"
        )
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    return kind(**converted)


def _validate_columns(contract: Contract, where: str, names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in contract.column_names]
    if missing:
        raise _error(contract, where, f"not columns of {contract.key}: {missing}")


def _imputable(contract: Contract) -> tuple[str, ...]:
    columns = []
    for i, column in enumerate(contract.columns):
        if not column.custom(IMPUTABLE_PROPERTY, False):
            continue
        where = f"schema/0/properties/{i}/customProperties/{IMPUTABLE_PROPERTY}"
        if column.primary_key or column.is_pii:
            reason = "a key" if column.primary_key else "personal data"
            raise _error(contract, where, f"{column.name} is {reason}: never imputed")
        flag = flag_column(column.name)
        if flag not in contract.column_names or contract.column(flag).logical_type != "boolean":
            raise _error(
                contract,
                where,
                f"declare a boolean column {flag} to flag the imputed values of {column.name}",
            )
        columns.append(column.name)
    return tuple(columns)


@cache
def _parse(contract: Contract) -> QualityConfig:
    anomaly = _options(contract, ANOMALY_PROPERTY, AnomalyConfig, contract.custom(ANOMALY_PROPERTY))
    drift = _options(contract, DRIFT_PROPERTY, DriftConfig, contract.custom(DRIFT_PROPERTY))
    if anomaly:
        _validate_columns(contract, f"customProperties/{ANOMALY_PROPERTY}", anomaly.groups)
        _validate_columns(contract, f"customProperties/{ANOMALY_PROPERTY}", anomaly.columns)
        bad = sorted(set(anomaly.detectors) - set(DETECTORS))
        if bad:
            raise _error(
                contract,
                f"customProperties/{ANOMALY_PROPERTY}/detectors",
                f"unknown detector(s) {bad}; known: {', '.join(DETECTORS)}",
            )
    if drift:
        _validate_columns(contract, f"customProperties/{DRIFT_PROPERTY}", drift.columns)
    return QualityConfig(anomaly=anomaly, drift=drift, imputable=_imputable(contract))


def quality_config(contract: Contract) -> QualityConfig:
    """The contract's quality settings; ContractError names the field that is wrong."""
    return _parse(contract)
