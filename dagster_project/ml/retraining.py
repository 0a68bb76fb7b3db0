"""Retraining triggers for model assets: on a schedule, and when a check on the training
data warns (e.g. the drift check on the product a model learns from)."""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

RECENT = 50  # executions looked at per evaluation: far more than arrive between two ticks


def weekly_retraining(
    name: str, target: dg.AssetKey, cron: str = "0 3 * * 1"
) -> dg.ScheduleDefinition:
    """Retrain every week (Monday 03:00 by default), running from the start."""
    return dg.ScheduleDefinition(
        name=name,
        cron_schedule=cron,
        target=dg.AssetSelection.assets(target),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Retrains {target.to_user_string()} every week",
    )


def retrain_on_check_warning(
    name: str,
    check: dg.AssetCheckKey,
    target: dg.AssetKey,
    *,
    minimum_interval_seconds: int = 300,
) -> dg.SensorDefinition:
    """Request a run of `target` for each new failed evaluation of `check` with severity
    WARN. The check may live in another code location; until it has been evaluated
    (or while it is not defined anywhere) the sensor skips and says so."""
    label = check.to_user_string()

    @dg.sensor(
        name=name,
        description=f"Retrains {target.to_user_string()} when {label} warns",
        asset_selection=[target],
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        history = context.instance.event_log_storage.get_asset_check_execution_history(
            check, limit=RECENT
        )
        if not history:
            return dg.SkipReason(
                f"no evaluation of {label} yet: the check is not defined in the mesh or has not run"
            )
        seen = int(context.cursor) if context.cursor else 0
        warnings = [r for r in history if r.id > seen and _warned(r)]
        newest = max(r.id for r in history)
        if not warnings:
            return dg.SensorResult(
                skip_reason=f"no new warning from {label}", cursor=str(max(seen, newest))
            )
        latest = max(warnings, key=lambda r: r.id)
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"{label}:{latest.id}",
                    asset_selection=[target],
                    tags={"meshwork/retrain_reason": f"{label} warned in run {latest.run_id}"},
                )
            ],
            cursor=str(max(seen, newest)),
        )

    return _sensor


def _warned(record) -> bool:
    if record.status != AssetCheckExecutionRecordStatus.FAILED:
        return False
    evaluation = record.evaluation
    if evaluation is None or "skipped" in evaluation.metadata:  # not judged: no warning
        return False
    return evaluation.severity == dg.AssetCheckSeverity.WARN
