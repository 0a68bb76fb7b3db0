"""Plain-language alerts for asset checks that warn or fail, raised by a sensor.

Each code location runs one sensor over its own asset checks, so an event is alerted by
one location only. The sensor reads the instance's check executions after its cursor (the
id of the execution record, one row per check evaluation in the instance's index; the
event log's own storage ids are per run on the default SQLite storage, so they cannot
order events across runs) and sends one alert per warning or failure to the sink of
`quality/alerts.py` (MESH_HOME/alerts, plus the webhook when configured). Checks that
already sent their own alert while running (the drift check records `alert_file` in its
metadata) are not sent twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

from dagster_project.checks.quality import alerts
from dagster_project.lake.resource import MeshResource

BATCH = 200  # executions read per storage query (paged)
INTERVAL_S = 30
STALE_PLANNED_S = 3600  # planned this long ago and never evaluated: not waited for
ALREADY_ALERTED = "alert_file"
PLANNED = AssetCheckExecutionRecordStatus.PLANNED
FAILED = AssetCheckExecutionRecordStatus.FAILED


def _severity(evaluation: dg.AssetCheckEvaluation) -> str:
    return "ERROR" if evaluation.severity == dg.AssetCheckSeverity.ERROR else "WARN"


def check_alert(
    evaluation: dg.AssetCheckEvaluation, run_id: str, execution_id: int
) -> alerts.Alert:
    """The alert for a check that did not pass, as one readable sentence."""
    product = evaluation.asset_key.to_user_string()
    outcome = "failed" if _severity(evaluation) == "ERROR" else "raised a warning"
    partition = f" for partition {evaluation.partition}" if evaluation.partition else ""
    reason = (evaluation.description or "no description given").rstrip(".")
    text = (
        f"The quality check '{evaluation.check_name}' on {product}{partition} {outcome}: {reason}."
    )
    details = {"run_id": run_id, "execution_id": execution_id, "partition": evaluation.partition}
    return alerts.Alert(product, evaluation.check_name, _severity(evaluation), text, details)


def _history_since(
    instance: dg.DagsterInstance, key: dg.AssetCheckKey, cursor: int
) -> list[AssetCheckExecutionRecord]:
    """The check's executions with an id above `cursor` (the storage pages newest first)."""
    found: list[AssetCheckExecutionRecord] = []
    page_cursor = None
    while True:
        page = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=BATCH, cursor=page_cursor
        )
        new = [r for r in page if r.id > cursor]
        found += new
        if len(new) < BATCH:
            return found
        page_cursor = page[-1].id


def _still_running(instance: dg.DagsterInstance, records: list[AssetCheckExecutionRecord]):
    """Ids of planned executions whose run may still evaluate them. A finished run leaves
    some planned forever (a check over a partition range is evaluated once, not per
    partition), so only unfinished, recent runs hold the cursor back."""
    fresh = time.time() - STALE_PLANNED_S
    planned = [r for r in records if r.status == PLANNED and r.create_timestamp > fresh]
    if not planned:
        return []
    runs = instance.get_run_records(dg.RunsFilter(run_ids=list({r.run_id for r in planned})))
    unfinished = {run.dagster_run.run_id for run in runs if not run.dagster_run.is_finished}
    return [r.id for r in planned if r.run_id in unfinished]


def new_executions(
    instance: dg.DagsterInstance, check_keys: Iterable[dg.AssetCheckKey], cursor: int
) -> tuple[list[AssetCheckExecutionRecord], int]:
    """Evaluated executions after `cursor`, oldest first, and the next cursor: it stops
    before any execution still running, so its evaluation is read on a later tick."""
    records = [r for key in check_keys for r in _history_since(instance, key, cursor)]
    running = _still_running(instance, records)
    done = sorted((r for r in records if r.status != PLANNED), key=lambda r: r.id)
    limit = min(running) - 1 if running else max((r.id for r in records), default=cursor)
    return [r for r in done if r.id <= limit], max(limit, cursor)


def _alert_worthy(record: AssetCheckExecutionRecord) -> bool:
    evaluation = record.evaluation
    return (
        record.status == FAILED
        and evaluation is not None
        and ALREADY_ALERTED not in evaluation.metadata
    )


def check_alert_sensor(name: str) -> dg.SensorDefinition:
    """A sensor that alerts, once per event, on every asset check of its code location
    that warned or failed since its cursor; RUNNING from the start."""

    @dg.sensor(
        name=name,
        minimum_interval_seconds=INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends a plain-language alert for each asset check that warns or fails.",
    )
    def _sensor(context: dg.SensorEvaluationContext, mesh: MeshResource):
        cursor = int(context.cursor) if context.cursor else 0
        check_keys = context.repository_def.asset_graph.asset_check_keys
        records, next_cursor = new_executions(context.instance, check_keys, cursor)
        if next_cursor == cursor:
            return dg.SkipReason("No new asset check evaluations.")
        sent = 0
        for record in filter(_alert_worthy, records):
            alert = check_alert(record.evaluation, record.run_id, record.id)
            delivery = alerts.send(mesh.settings, alert)
            context.log.info(f"{alert.text} -> {delivery.file}")
            sent += 1
        reason = f"Sent {sent} alert(s) for {len(records)} new check evaluation(s)."
        return dg.SensorResult(skip_reason=reason, cursor=str(next_cursor))

    return _sensor
