"""Quality intelligence as Dagster asset checks, evaluated where a product is published.

`quality_check_specs` adds, per contract, the non-blocking checks it switches on:
`anomalies` and `drift` (severity WARN: they inform, they never stop downstream
products). `impute_missing` runs before the write; `evaluate_quality` after it, returning
the check results, the quality-score metadata and sending alerts for warnings. A bug in
this advisory layer is reported as a failed WARN check, never as a failed product run.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import dagster as dg
import polars as pl

from dagster_project.checks.freshness import FreshnessVerdict, judge_freshness
from dagster_project.checks.quality import alerts
from dagster_project.checks.quality.anomaly import score_rows, stage_flagged
from dagster_project.checks.quality.config import quality_config
from dagster_project.checks.quality.drift import evaluate_drift
from dagster_project.checks.quality.imputation import Imputation, impute
from dagster_project.checks.quality.score import (
    QualityScore,
    anomaly_dimension,
    completeness,
    drift_dimension,
    save_score,
    uniqueness,
    validity,
)
from dagster_project.checks.rules import RuleOutcome
from dagster_project.core.contracts import Contract
from dagster_project.lake.storage import DateWindow, Lake, TableInfo
from dagster_project.products.product import CheckFamily, FamilyResult, Written

ANOMALY_CHECK = "anomalies"
DRIFT_CHECK = "drift"


def anomalies_key(contract: Contract) -> str:
    return f"{contract.key}_anomalies"


def quality_check_specs(contract: Contract, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    config = quality_config(contract)
    specs = []
    if config.anomaly:
        description = (
            "New rows scored for anomalies (values odd overall, in their group, or "
            "breaking a derivation); warns above the tolerated share, explains each"
        )
        metadata = {"anomalies_product": anomalies_key(contract)}
        specs.append(
            dg.AssetCheckSpec(
                ANOMALY_CHECK, asset=key, description=description, blocking=False, metadata=metadata
            )
        )
    if config.drift:
        description = (
            "Newest data against its reference window (Evidently), with the likely "
            "root cause; warns when a column drifted"
        )
        specs.append(
            dg.AssetCheckSpec(DRIFT_CHECK, asset=key, description=description, blocking=False)
        )
    return specs


def impute_missing(
    contract: Contract, frame: pl.DataFrame
) -> tuple[pl.DataFrame, list[Imputation]]:
    """Fill the contract's imputable columns before the write (a no-op without them)."""
    columns = quality_config(contract).imputable
    return impute(contract, frame, columns) if columns else (frame, [])


@dataclass
class QualityResult:
    check_results: list[dg.AssetCheckResult] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    score: QualityScore | None = None


def evaluate_quality(
    context: dg.AssetExecutionContext | None,
    lake: Lake,
    contract: Contract,
    frame: pl.DataFrame,
    *,
    window: DateWindow | None,
    outcomes: list[RuleOutcome],
    info: TableInfo | None,
    imputations: list[Imputation] = (),
    freshness: FreshnessVerdict | None = None,
) -> QualityResult:
    """The product's quality checks and score after a write of `frame`."""
    config = quality_config(contract)
    key = dg.AssetKey(contract.key.split("/"))
    result = QualityResult()
    dimensions: dict[str, tuple[float | None, str]] = {}
    if config.anomaly:
        run = partial(_anomaly_check, lake, contract, config.anomaly, frame, window, info, key)
        check, dimensions[ANOMALY_CHECK] = _guarded(context, contract, ANOMALY_CHECK, key, run)
        result.check_results.append(check)
    if config.drift:
        run = partial(_drift_check, lake, contract, config.drift, window, key)
        check, dimensions[DRIFT_CHECK] = _guarded(context, contract, DRIFT_CHECK, key, run)
        result.check_results.append(check)
    freshness = freshness or judge_freshness(contract, lake, info=info)
    result.score = _score(contract, frame, outcomes, info, imputations, dimensions, freshness)
    save_score(lake.settings, contract, result.score)
    result.metadata = {
        "quality_score": result.score.score,
        "quality_narrative": dg.MetadataValue.md(result.score.narrative()),
        "quality_dimensions": dg.MetadataValue.json(result.score.dimensions),
    }
    if imputations:
        result.metadata["imputed"] = dg.MetadataValue.json([i.as_dict() for i in imputations])
    return result


def _guarded(context, contract: Contract, name: str, key: dg.AssetKey, evaluate):
    try:
        return evaluate()
    except Exception as exc:  # advisory checks must not fail the product's run
        if context is not None:
            context.log.warning(f"{contract.key} {name} check could not run: {exc}")
        error = {"error": dg.MetadataValue.text(traceback.format_exc(limit=5))}
        description = f"could not be evaluated: {type(exc).__name__}: {exc}"
        return _warning(key, name, False, description, error), (None, "could not be evaluated")


def _warning(key: dg.AssetKey, name: str, passed: bool, description: str, metadata: dict):
    """A WARN check result: the quality checks inform, they never stop downstream products."""
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def _anomaly_check(lake, contract, config, frame, window, info, key):
    outcome = score_rows(lake, contract, config, frame, window)
    stage_flagged(lake.settings, contract, window, outcome, info.version if info else -1)
    if outcome.skipped:
        return _not_judged(key, ANOMALY_CHECK, outcome.describe(), {"rows": frame.height})
    model = outcome.detector.summary()
    top = outcome.flagged.head(config.top)
    metadata = {
        "rows_scored": outcome.rows_scored,
        "anomalies": outcome.count,
        "anomaly_rate": round(outcome.rate, 6),
        "tolerated_rate": outcome.max_rate,
        "detector": model["detector"],
        "detector_threshold": model["threshold"],
        "selection_criterion": model["criterion"],
        "detector_trials": dg.MetadataValue.json(model["trials"]),
        "fitted_on": model["fitted_on"],
        "fitted_at": model["fitted_at"],
        "calibration": dg.MetadataValue.json(model["calibration"]),
        "top_anomalies": dg.MetadataValue.md(_table(top)),
        "anomalies_product": anomalies_key(contract),
        "timings": dg.MetadataValue.json(outcome.seconds),
    }
    if not outcome.passed:
        _alert(
            lake,
            contract,
            ANOMALY_CHECK,
            outcome.describe(),
            {"anomalies": outcome.count, "rate": outcome.rate},
            None,
            metadata,
        )
    check = _warning(key, ANOMALY_CHECK, outcome.passed, outcome.describe(), metadata)
    return check, anomaly_dimension(outcome.count, outcome.rows_scored)


def _not_judged(key: dg.AssetKey, name: str, description: str, metadata: dict):
    """Too little data to judge: a visible WARN failure saying so, never a pass; the
    quality score leaves the dimension out ("not judged")."""
    reason = description.removeprefix("not judged: ")
    check = _warning(key, name, False, description, {**metadata, "skipped": reason})
    return check, (None, f"not judged: {reason}")


def _table(top: pl.DataFrame) -> str:
    if top.is_empty():
        return "No anomalies."
    lines = ["| score | explanation |", "| ---: | --- |"]
    for row in top.iter_rows(named=True):
        lines.append(f"| {row['anomaly_score']:.2f} | {row['reason'].replace('|', '/')} |")
    return "\n".join(lines)


def _drift_check(lake, contract, config, window, key):
    outcome = evaluate_drift(lake, contract, config, window)
    per_column = {
        c.column: {
            "score": round(c.score, 4),
            "method": c.method,
            "threshold": c.threshold,
            "drifted": c.drifted,
        }
        for c in outcome.columns
    }
    metadata: dict[str, Any] = {
        "reference": outcome.reference,
        "current": outcome.current,
        "reference_rows": outcome.reference_rows,
        "current_rows": outcome.current_rows,
        "sample_rows": dg.MetadataValue.json(list(outcome.sample_rows)),
        "columns": dg.MetadataValue.json(per_column),
        "drifted_columns": ", ".join(c.column for c in outcome.drifted),
        "root_cause": dg.MetadataValue.md(
            "\n".join(f"- {c.sentence}" for c in outcome.causes) or "-"
        ),
        "timings": dg.MetadataValue.json(outcome.seconds),
        "periods": dg.MetadataValue.json(outcome.summary()),
    }
    if outcome.skipped:
        return _not_judged(key, DRIFT_CHECK, outcome.describe(), metadata)
    if outcome.report_uri:
        metadata["report"] = dg.MetadataValue.path(outcome.report_uri)
        if lake.settings.is_local:
            metadata["report_url"] = dg.MetadataValue.url(f"file://{outcome.report_uri}")
    if not outcome.passed:
        details = {"drifted": [c.column for c in outcome.drifted], "current": outcome.current}
        _alert(
            lake, contract, DRIFT_CHECK, outcome.describe(), details, outcome.report_uri, metadata
        )
    check = _warning(key, DRIFT_CHECK, outcome.passed, outcome.describe(), metadata)
    return check, drift_dimension([c.column for c in outcome.drifted], len(outcome.columns))


def _alert(lake, contract, check, text, details, link, metadata) -> None:
    alert = alerts.Alert(contract.key, check, "WARN", f"{contract.key}: {text}", details, link)
    delivery = alerts.send(lake.settings, alert)
    metadata["alert_file"] = dg.MetadataValue.path(delivery.file)
    if delivery.webhook:
        metadata["alert_webhook"] = delivery.webhook


def _score(
    contract, frame, outcomes, info, imputations, dimensions, freshness: FreshnessVerdict
) -> QualityScore:
    imputed = sum(i.filled for i in imputations)
    values: dict[str, tuple[float | None, str]] = {
        "completeness": completeness(frame, contract, imputed),
        "validity": validity(outcomes, frame.height),
        "uniqueness": uniqueness(outcomes, info.rows if info else frame.height),
        "freshness": freshness.score(),  # the age of the newest event, not of the write
        "anomalies": dimensions.get(ANOMALY_CHECK, (None, "not monitored")),
        "drift": dimensions.get(DRIFT_CHECK, (None, "not monitored")),
    }
    return QualityScore(
        product=contract.key,
        dimensions={k: (round(v, 4) if v is not None else None) for k, (v, _) in values.items()},
        notes={k: note for k, (_, note) in values.items()},
        evaluated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        last_update=info.last_update.isoformat() if info else None,
    )


class QualityChecks(CheckFamily):
    """Imputation before the write; anomalies, drift (WARN) and the quality score after."""

    name = "quality"

    def specs(self, contract: Contract, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
        return quality_check_specs(contract, key)

    def prepare(self, contract: Contract, frame: pl.DataFrame) -> tuple[pl.DataFrame, list]:
        return impute_missing(contract, frame)

    def fills(self, contract: Contract) -> set[str]:
        return set(quality_config(contract).imputable)

    def prepare_spark(self, contract: Contract, frame: Any) -> tuple[Any, list]:
        from dagster_project.checks.quality.spark_imputation import impute_on_spark  # pyspark

        return impute_on_spark(frame, contract)

    def evaluate(self, written: Written) -> FamilyResult:
        result = evaluate_quality(
            written.context,
            written.lake,
            written.contract,
            written.frame,
            window=written.window,
            outcomes=written.findings.get("rules", []),
            info=written.info,
            imputations=written.imputations,
            freshness=written.findings.get("freshness"),  # event_freshness's verdict
        )
        return FamilyResult(result.check_results, result.metadata)
