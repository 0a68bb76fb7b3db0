"""kill -9 of a real Dagster run in the middle of its step, then a real `dagster-daemon`:
its run monitoring, as `mesh` configures the instance, marks the run failed and frees
its concurrency-pool slot with no operator, and the product's next run runs instead of
queueing forever. (tests/faults/test_killed_runs.py runs the daemon's monitoring pass
in-process, fast; this is the same with the daemon itself.)"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.app.cli.instance import mesh_instance
from dagster_project.core.settings import MeshSettings
from tests.factories import REPO
from tests.faults.run_worker import POOL

pytestmark = pytest.mark.e2e

DAEMON = Path(sys.executable).parent / "dagster-daemon"
WORKER = ["-m", "tests.faults.run_worker"]
SETTLE_S = 90.0  # the daemon's start and first passes on a busy 2-core machine


@pytest.fixture
def fault_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MeshSettings:
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "mesh"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return MeshSettings(home=str(tmp_path / "mesh"), storage_options={})


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _worker(mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *WORKER, mode],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.contextmanager
def _daemon() -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` on the test's instance, in its own process group (stopped,
    with the code server it starts, by SIGKILL to the group: it is a throwaway)."""
    command = [str(DAEMON), "run", "-f", str(REPO / "tests" / "faults" / "run_worker.py")]
    daemon = subprocess.Popen(
        command,
        cwd=REPO,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield daemon
    finally:
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait()


def _slot_holders(instance: dg.DagsterInstance) -> list[str]:
    info = instance.event_log_storage.get_concurrency_info(POOL)
    return [s.run_id for s in info.claimed_slots]


def test_the_daemon_fails_a_killed_run_frees_its_slot_and_the_next_run_runs(
    fault_home: MeshSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_RUN_MONITOR_INTERVAL", "1")
    monkeypatch.setenv("MESH_RUN_FREE_SLOTS_AFTER", "1")
    instance = mesh_instance(fault_home)  # writes the instance config `mesh` uses
    hung = _worker("hang")
    assert hung.stdout.readline().strip() == "step started", hung.stderr.read()
    os.kill(hung.pid, signal.SIGKILL)
    hung.wait()
    [record] = instance.get_run_records()
    run_id = record.dagster_run.run_id
    assert record.dagster_run.status == dg.DagsterRunStatus.STARTED  # nothing ended it
    assert _slot_holders(instance) == [run_id]  # and the product's pool slot is held

    with _daemon():
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            run = instance.get_run_by_id(run_id)
            if run.status == dg.DagsterRunStatus.FAILURE and not _slot_holders(instance):
                break
            time.sleep(0.5)
        assert run.status == dg.DagsterRunStatus.FAILURE, "run monitoring did not fail it"
        assert _slot_holders(instance) == [], "its pool slot was not freed"
        failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert "is gone" in failure[-1].message

        later = _worker("quick")
        out, err = later.communicate(timeout=SETTLE_S)
    assert later.returncode == 0 and "succeeded" in out, err
    latest = instance.get_run_records(limit=1)[0].dagster_run
    assert latest.run_id != run_id and latest.status == dg.DagsterRunStatus.SUCCESS
