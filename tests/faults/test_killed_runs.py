"""kill -9 of a real Dagster run in the middle of its step: the daemon's run monitoring
(its own monitoring pass, run here in-process) on the instance `mesh` configures marks
the run failed and frees its concurrency-pool slot with no operator, and the product's
next run runs instead of queueing forever. tests/e2e/test_run_monitoring.py does the
same with a real `dagster-daemon`; `mesh runs --clear-dead` is tested in tests/unit/app."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import dagster as dg
import pytest
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import EmptyWorkspaceTarget
from dagster._daemon.controller import create_daemon_of_type
from dagster._daemon.daemon import MonitoringDaemon

from dagster_project.app.cli.instance import mesh_instance
from dagster_project.core.settings import MeshSettings
from tests.factories import REPO
from tests.faults.run_worker import POOL, slow

NEXT_RUN_TIMEOUT_S = 60.0


def _slot_holders(instance: dg.DagsterInstance) -> list[str]:
    return [s.run_id for s in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots]


def _killed_mid_step(instance: dg.DagsterInstance) -> str:
    """A run of `faults/slow` in its own process, killed with SIGKILL inside its step."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "tests.faults.run_worker", "hang"]
    hung = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    assert hung.stdout.readline().strip() == "step started"
    os.kill(hung.pid, signal.SIGKILL)
    hung.wait()
    [record] = instance.get_run_records()
    return record.dagster_run.run_id


def _monitoring_pass(instance: dg.DagsterInstance) -> None:
    """One pass of the daemon's MONITORING daemon: runs, then pool slots of ended runs."""
    daemon = create_daemon_of_type(MonitoringDaemon.daemon_type(), instance)
    with WorkspaceProcessContext(instance, EmptyWorkspaceTarget()) as workspace:
        errors = [e for e in daemon.run_iteration(workspace) if e is not None]
    assert errors == []


def test_a_killed_run_fails_under_monitoring_and_the_next_run_runs(
    fault_home: MeshSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_RUN_FREE_SLOTS_AFTER", "1")
    instance = mesh_instance(fault_home)  # the instance config `mesh` writes
    run_id = _killed_mid_step(instance)
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    assert _slot_holders(instance) == [run_id]  # nothing ended it or gave its slot back

    _monitoring_pass(instance)
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert "is gone" in failure[-1].message
    time.sleep(1.1)  # MESH_RUN_FREE_SLOTS_AFTER
    _monitoring_pass(instance)
    assert _slot_holders(instance) == []

    results: list[dg.ExecuteInProcessResult] = []
    later = threading.Thread(
        target=lambda: results.append(dg.materialize([slow], instance=instance)), daemon=True
    )
    later.start()
    later.join(NEXT_RUN_TIMEOUT_S)  # waiting for a slot that never frees would hang here
    assert results and results[0].success, "the next run of the product did not run"
