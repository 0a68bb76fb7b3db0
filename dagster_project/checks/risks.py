"""The anomaly and drift checks that warn now, as plain-language risks for the insights.

Read from the Dagster instance: per check, its evaluations newest first; a check whose
latest evaluation did not pass is a risk, warning since the first of its unbroken run of
failed evaluations. Sentences are built from the checks' numbers and column names only,
never from row values (an anomaly's explanation quotes values, which may be personal).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

from dagster_project.checks.fairness import FAIRNESS_CHECK
from dagster_project.checks.quality.checks import ANOMALY_CHECK, DRIFT_CHECK

QUALITY_CHECKS = (ANOMALY_CHECK, DRIFT_CHECK, FAIRNESS_CHECK)
HISTORY = 50  # evaluations looked back through to find when a warning started
EVALUATED = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}
FAILED = AssetCheckExecutionRecordStatus.FAILED


NOT_JUDGED = "NOT_JUDGED"  # too little data to judge: neither passed nor failed


def execution_status(record: AssetCheckExecutionRecord) -> str:
    """A check execution's status (SUCCEEDED, FAILED, ...), NOT_JUDGED for a WARN failure
    whose metadata says it was skipped (see `checks.quality.checks`)."""
    evaluation = record.evaluation  # only planned (its run failed first): no metadata
    if isinstance(evaluation, dg.AssetCheckEvaluation) and "skipped" in evaluation.metadata:
        return NOT_JUDGED
    return record.status.value


@dataclass(frozen=True)
class CheckRisk:
    """One warning: what it is about (`subject`, `metric`), its score and its sentence."""

    product: str
    check: str
    subject: str
    metric: str
    value: float
    narrative: str


def quality_check_keys(
    check_keys: Iterable[dg.AssetCheckKey], domain: str
) -> list[dg.AssetCheckKey]:
    """The anomaly and drift checks on the domain's own products."""
    return sorted(
        (k for k in check_keys if k.name in QUALITY_CHECKS and k.asset_key.path[0] == domain),
        key=lambda k: (k.asset_key.to_user_string(), k.name),
    )


def check_risks(
    instance: dg.DagsterInstance, check_keys: Iterable[dg.AssetCheckKey]
) -> list[CheckRisk]:
    """A risk per drifted column and per anomaly check whose latest evaluation warned."""
    risks: list[CheckRisk] = []
    for key in check_keys:
        history = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=HISTORY, status=EVALUATED
        )
        streak = _failed_streak(history)
        if streak:
            risks += _risks(key, streak[0].evaluation, _since(streak))
    return risks


def _failed_streak(history: list[AssetCheckExecutionRecord]) -> list[AssetCheckExecutionRecord]:
    """The newest evaluations that failed in a row (empty when the latest passed)."""
    streak = []
    for record in history:
        if record.status != FAILED or record.evaluation is None:
            break
        streak.append(record)
    return streak


def _since(streak: list[AssetCheckExecutionRecord]) -> str:
    first = streak[-1]
    stamp = first.event.timestamp if first.event else first.create_timestamp
    when = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
    runs = f", {len(streak)} evaluations in a row" if len(streak) > 1 else ""
    return f"since {when}{runs}"


def _value(metadata: dict[str, Any], name: str, default: Any = None) -> Any:
    entry = metadata.get(name)
    return entry.value if entry is not None else default


def _risks(key: dg.AssetCheckKey, evaluation: dg.AssetCheckEvaluation, since: str):
    product = key.asset_key.to_user_string()
    meta = evaluation.metadata
    if "skipped" in meta:  # not judged (too little data): nothing to warn about
        return []
    if key.name == DRIFT_CHECK and _value(meta, "columns"):
        return _drift_risks(product, meta, since)
    if key.name == ANOMALY_CHECK and _value(meta, "rows_scored") is not None:
        return [_anomaly_risk(product, meta, since)]
    if key.name == FAIRNESS_CHECK and _value(meta, "disparities") is not None:
        return _fairness_risks(product, _value(meta, "disparities"), since)
    # The check itself could not run: that is a risk too (nothing watches the data).
    text = f"The {key.name} check on {product} could not be evaluated ({since})."
    metric = f"{key.name}_not_evaluated"
    return [CheckRisk(product, key.name, f"product={product}", metric, 1.0, text)]


def _drift_risks(product: str, meta: dict[str, Any], since: str) -> list[CheckRisk]:
    columns = _value(meta, "columns")
    window = f"{_value(meta, 'current', 'the newest data')} against "
    window += _value(meta, "reference", "its reference")
    drifted = [(name, c) for name, c in columns.items() if c.get("drifted")]
    drifted.sort(key=lambda item: (-item[1]["score"] / (item[1]["threshold"] or 1), item[0]))
    return [
        CheckRisk(
            product,
            DRIFT_CHECK,
            f"column={product}.{name}",
            "drift_score",
            float(c["score"]),
            f"Column {name} of {product} drifted: {c['method']} score {c['score']:.3f} "
            f"against a threshold of {c['threshold']:g} ({window}); the drift check has "
            f"warned {since}.",
        )
        for name, c in drifted
    ]


def _fairness_risks(product: str, disparities: list[dict], since: str) -> list[CheckRisk]:
    """One risk per flagged disparity: which segment, how far from the others, on how
    many rows (groups are segment values of at least minRows rows, never a person)."""
    return [
        CheckRisk(
            product,
            FAIRNESS_CHECK,
            f"segment={product}.{d['segment']}={d['group']}",
            "fairness_gap",
            float(d["gap"]),
            f"On {product}, {d['sentence']}; the fairness policy has warned {since}.",
        )
        for d in disparities
        if d.get("flagged")
    ]


def _anomaly_risk(product: str, meta: dict[str, Any], since: str) -> CheckRisk:
    count, scored = _value(meta, "anomalies", 0), _value(meta, "rows_scored", 0)
    rate, tolerated = _value(meta, "anomaly_rate", 0.0), _value(meta, "tolerated_rate", 0.0)
    where = _value(meta, "anomalies_product")
    text = (
        f"{count:,} of {scored:,} new rows of {product} look anomalous ({rate:.2%}, "
        f"tolerated {tolerated:.2%}); the anomaly check has warned {since}."
    )
    if where:
        text += f" The rows and their explanations are in {where}."
    value = round(rate * 100, 4)
    return CheckRisk(product, ANOMALY_CHECK, f"product={product}", "anomaly_rate_pct", value, text)
