"""kill -9 of a real Dagster run in the middle of its step: the daemon's run monitoring
(its own monitoring pass, run here in-process) on the instance `mesh` configures marks
the run failed and frees its concurrency-pool slot with no operator, and the product's
next run runs instead of queueing forever; a landing run killed mid-write is asked for
again by the sensor and converges. tests/e2e/test_run_monitoring.py does the same with a
real `dagster-daemon`; `mesh runs --clear-dead` is tested in tests/unit/app."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

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
from tests.faults.test_replays import Shop

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


@pytest.mark.parametrize("product", ["events", "visits"])
def test_a_landing_run_killed_mid_write_shows_no_partial_row_and_converges_unattended(
    tmp_path: Path, fault_home: MeshSettings, monkeypatch: pytest.MonkeyPatch, product: str
) -> None:
    """The sensor's run of a landing file, SIGKILLed while its Delta write streams (a merge
    of `events`, a partition overwrite of a day of `visits`): readers see the table
    before or after, never between; monitoring fails the run and frees its slot, the
    sensor asks for the file again, and that run converges (no operator)."""
    monkeypatch.setenv("MESH_RUN_FREE_SLOTS_AFTER", "1")
    instance = mesh_instance(fault_home)
    shop = Shop(tmp_path, instance)
    day = "2025-03-01" if product == "visits" else None
    partition = [(product, day)]
    shop.land(product, "2025-03-01.csv", list(range(1000)))
    shop.tick()
    shop.materialize(product)
    shop.land(product, "2025-03-01-b.csv", list(range(500, 1500)), "b")  # 500 updated, 500 new
    assert shop.tick() == partition
    before = {i: "v1" for i in range(1000)}
    after = before | {i: "b" for i in range(500, 1500)}
    seen, stop = [], threading.Event()

    def read() -> None:
        while not stop.wait(0.005):
            rows = shop.lake.read(f"shop/{product}")
            seen.append(dict(zip(rows["event_id"], rows["name"], strict=True)))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    env = {**os.environ, "PYTHONPATH": str(REPO), "FAULT_CONTRACTS": str(shop.folder)}
    command = [sys.executable, "-m", "tests.faults.run_worker", "land", shop.run_keys[product]]
    command += [product, *([day] if day else [])]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
    run = subprocess.Popen(command, cwd=REPO, env=env, text=True, **pipes)
    assert run.stdout.readline().strip() == "writing"  # the write is streaming its rows
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    killed = shop.lake.read(f"shop/{product}")
    assert killed.height == len(before)  # killed before its commit
    _monitoring_pass(instance)  # the run is gone: failed
    time.sleep(1.1)  # MESH_RUN_FREE_SLOTS_AFTER
    _monitoring_pass(instance)  # its pool slot freed
    assert shop.tick() == partition  # asked for again, no operator
    shop.materialize(product, requested=True)
    stop.set()
    reader.join(30)
    assert seen and all(s in (before, after) for s in seen)  # no torn or partial snapshot
    final = shop.lake.read(f"shop/{product}")
    assert dict(zip(final["event_id"], final["name"], strict=True)) == after
    assert shop.tick() == []
