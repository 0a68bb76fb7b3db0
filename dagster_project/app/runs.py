"""Runs that can no longer finish: find them, end them and free their pool slots.

A run whose process dies (kill -9, out of memory, a lost machine) writes no end event:
Dagster keeps it STARTED and keeps the concurrency-pool slot it claimed, so the next run
of that product waits forever. Two things end such runs without an operator:

- the Dagster daemon's run monitoring (`run_monitoring` in the instance config `mesh`
  writes): `MeshRunLauncher` tells it whether a run's worker process is still alive, the
  daemon marks dead runs failed and frees the slots of ended runs;
- `clear_dead_runs(instance)` (`mesh runs --clear-dead`) does the same at once, without
  a daemon, and says what it did.

A worker is judged by the process id its run recorded (Dagster's "Started process for
run" / "Executing steps in process" engine events), only on the machine the run ran on:
a run tagged `mesh/host` (by `MeshRunLauncher`), or any run of an instance on local
SQLite, which no other machine can share. Any other run is judged by its timeouts.
"""

from __future__ import annotations

import socket
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import dagster as dg
import psutil
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster._core.storage.runs import InMemoryRunStorage, SqliteRunStorage

from dagster_project.core.settings import Settings

HOST_TAG = "mesh/host"
# A process created this long after its run started cannot be the run's worker (its
# pid was reused); the slack covers clocks of coarse resolution.
PID_REUSE_SLACK_S = 2.0
_UNSTARTED = (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING)
WATCHED = [*_UNSTARTED, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def run_monitoring(settings: Settings) -> dict[str, int | bool]:
    """The instance's `run_monitoring` section from the settings (README: Operations)."""
    return {
        "enabled": True,
        "start_timeout_seconds": settings.run_start_timeout,
        "cancel_timeout_seconds": settings.run_cancel_timeout,
        "max_runtime_seconds": settings.run_max_runtime,
        # The default launcher cannot resume a run in a new worker: a dead run fails.
        "max_resume_run_attempts": 0,
        "poll_interval_seconds": max(1, settings.run_monitor_interval),
        "free_slots_after_run_end_seconds": settings.run_free_slots_after,
    }


@dataclass(frozen=True)
class DeadRun:
    """A run `clear_dead_runs` ended (or found already ended), and the pools it freed."""

    run_id: str
    job_name: str
    status: str  # before clearing
    reason: str
    ended_as: str | None  # "FAILURE", "CANCELED", or None when it had already ended
    pools: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pools": list(self.pools)}


def worker_status(instance: dg.DagsterInstance, run: dg.DagsterRun) -> CheckRunHealthResult:
    """Whether the process running `run` is alive: RUNNING, FAILED (gone, or its pid now
    belongs to a younger process) or UNKNOWN (no pid recorded yet, or another machine's)."""
    if not _on_this_host(instance, run):
        return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run's worker is on another host")
    pid = worker_pid(instance, run.run_id)
    if pid is None:
        return CheckRunHealthResult(WorkerStatus.UNKNOWN, "no worker process recorded yet")
    try:
        process = psutil.Process(pid)
        alive = process.status() != psutil.STATUS_ZOMBIE
        born = process.create_time()
    except psutil.NoSuchProcess:
        alive, born = False, 0.0
    record = instance.get_run_record_by_id(run.run_id)
    started = (record.start_time or record.create_timestamp.timestamp()) if record else born
    if alive and born <= started + PID_REUSE_SLACK_S:
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"worker process {pid} is alive")
    return CheckRunHealthResult(WorkerStatus.FAILED, f"worker process {pid} is gone")


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the run's worker: that of its first engine event naming a pid."""
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    for event in events:
        data = event.dagster_event.engine_event_data if event.dagster_event else None
        pid = data.metadata.get("pid") if data else None
        if pid is not None and str(pid.value).isdigit():
            return int(pid.value)
    return None


def _on_this_host(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    if HOST_TAG in run.tags:
        return run.tags[HOST_TAG] == socket.gethostname()
    return isinstance(instance.run_storage, SqliteRunStorage | InMemoryRunStorage)


class MeshRunLauncher(dg.DefaultRunLauncher):
    """Dagster's default launcher (each run in a process of its code server), which also
    tells run monitoring whether a run's worker is alive (see `worker_status`)."""

    def launch_run(self, context: LaunchRunContext) -> None:
        origin = context.dagster_run.remote_job_origin
        location = origin.repository_origin.code_location_origin if origin else None
        # A code server the launcher starts itself, or one on localhost, runs here.
        if getattr(location, "host", "localhost") in _LOCAL_HOSTS:
            tags = {HOST_TAG: socket.gethostname()}
            self._instance.add_run_tags(context.dagster_run.run_id, tags)
        super().launch_run(context)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        return worker_status(self._instance, run)


def clear_dead_runs(
    instance: dg.DagsterInstance, settings: Settings | None = None
) -> list[DeadRun]:
    """End every run that can no longer finish (its worker is gone, or it outlived its
    start, cancel or run timeout) and free the pool slots every ended run still holds."""
    settings = settings or Settings.from_env()
    ended: dict[str, DeadRun] = {}
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=WATCHED)):
        reason = _why_dead(instance, record, settings)
        if reason:
            ended[record.dagster_run.run_id] = _end(instance, record.dagster_run, reason)
    for run_id, pools in _held_slots(instance).items():
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            continue
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        dead = ended.get(run_id) or DeadRun(
            run_id,
            run.job_name if run else "?",
            run.status.value if run else "DELETED",
            "it had ended but still held pool slots",
            None,
        )
        ended[run_id] = replace(dead, pools=tuple(sorted(pools)))
    return list(ended.values())


def _why_dead(instance: dg.DagsterInstance, record: dg.RunRecord, settings: Settings) -> str | None:
    run, now = record.dagster_run, time.time()
    health = worker_status(instance, run)
    if health.status == WorkerStatus.FAILED:
        return str(health.msg)
    if health.status == WorkerStatus.RUNNING:
        return None  # alive: timeouts of live runs are the daemon's (it terminates them)
    if run.status in _UNSTARTED:
        launched = instance.get_run_stats(run.run_id).launch_time
        since = launched or record.create_timestamp.timestamp()
        if settings.run_start_timeout and now - since > settings.run_start_timeout:
            return f"it did not start within {settings.run_start_timeout} s"
    elif run.status == dg.DagsterRunStatus.CANCELING:
        since = record.update_timestamp.timestamp()
        if settings.run_cancel_timeout and now - since > settings.run_cancel_timeout:
            return f"it did not finish cancelling within {settings.run_cancel_timeout} s"
    elif settings.run_max_runtime and now - (record.start_time or now) > settings.run_max_runtime:
        return f"it ran longer than {settings.run_max_runtime} s (MESH_RUN_MAX_RUNTIME)"
    return None


def _end(instance: dg.DagsterInstance, run: dg.DagsterRun, reason: str) -> DeadRun:
    message = f"Meshwork marked this run ended: {reason}."
    if run.status == dg.DagsterRunStatus.CANCELING:
        instance.report_run_canceled(run, message)
        ended_as = dg.DagsterRunStatus.CANCELED.value
    else:
        instance.report_run_failed(run, message)
        ended_as = dg.DagsterRunStatus.FAILURE.value
    return DeadRun(run.run_id, run.job_name, run.status.value, reason, ended_as)


def _held_slots(instance: dg.DagsterInstance) -> dict[str, set[str]]:
    """Pools by the run holding (or waiting for) one of their slots."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    held: dict[str, set[str]] = defaultdict(set)
    for key in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(key)
        for slot in [*info.claimed_slots, *info.pending_steps]:
            held[slot.run_id].add(key)
    for run_id in storage.get_concurrency_run_ids():
        held.setdefault(run_id, set())
    return dict(held)


def in_progress(instance: dg.DagsterInstance) -> Sequence[dg.RunRecord]:
    """Runs not yet ended (what `mesh runs` lists)."""
    return instance.get_run_records(filters=dg.RunsFilter(statuses=WATCHED))
