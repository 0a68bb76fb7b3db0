"""Dead runs: judged by their worker process where it can be seen, else by their timeouts;
ended, and their pool slots freed, by `clear_dead_runs` (and `mesh runs --clear-dead`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.launcher import WorkerStatus
from dagster._core.test_utils import create_run_for_test
from typer.testing import CliRunner

from dagster_project.app import runs
from dagster_project.app.cli import app
from dagster_project.app.cli.instance import mesh_instance
from dagster_project.app.runs import HOST_TAG, clear_dead_runs, worker_status
from dagster_project.core.settings import MeshSettings, Settings

POOL = "mesh/test/product"
STARTED = dg.DagsterRunStatus.STARTED


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """The instance `mesh` sets up below tmp_path (SQLite, the mesh's config)."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "mesh"))
    with mesh_instance(MeshSettings(home=str(tmp_path / "mesh"))) as instance:
        yield instance


def _run(instance, status=STARTED, pid: int | None = None, tags=None) -> dg.DagsterRun:
    run = create_run_for_test(instance, job_name="product_job", status=status, tags=tags)
    if pid is not None:
        message = f"Started process for run (pid: {pid})."
        instance.report_engine_event(message, run, EngineEventData.in_process(pid))
    return run


def _claim(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    instance.event_log_storage.initialize_concurrency_limit_to_default(POOL)  # as runs do
    claimed = instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, "product")
    assert claimed.is_claimed


def _holders(instance: dg.DagsterInstance) -> list[str]:
    return [s.run_id for s in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots]


def _gone_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_run_whose_worker_is_gone_fails_and_frees_its_pool(instance) -> None:
    run = _run(instance, pid=_gone_pid())
    _claim(instance, run)
    assert worker_status(instance, run).status == WorkerStatus.FAILED
    [dead] = clear_dead_runs(instance)
    assert (dead.run_id, dead.status, dead.ended_as) == (run.run_id, "STARTED", "FAILURE")
    assert "is gone" in dead.reason and dead.pools == (POOL,)
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert _holders(instance) == []
    assert clear_dead_runs(instance) == []  # nothing left to do


def test_a_run_whose_worker_lives_is_left_alone(instance) -> None:
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.1)  # the run starts after its worker process
        run = _run(instance, pid=worker.pid)
        _claim(instance, run)
        assert worker_status(instance, run).status == WorkerStatus.RUNNING
        assert clear_dead_runs(instance) == []
        assert _holders(instance) == [run.run_id]
    finally:
        worker.kill()
        worker.wait()
    assert [d.run_id for d in clear_dead_runs(instance)] == [run.run_id]


def test_a_pid_now_held_by_a_younger_process_is_not_the_worker(
    instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Process start times are known to about a second (boot time is whole seconds): here
    # a process born up to 30 s before the run counts as younger than it.
    monkeypatch.setattr(runs, "PID_REUSE_SLACK_S", -30.0)
    run = _run(instance)
    younger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        instance.report_engine_event("pid", run, EngineEventData.in_process(younger.pid))
        assert worker_status(instance, run).status == WorkerStatus.FAILED
    finally:
        younger.kill()
        younger.wait()


def test_a_run_on_another_host_is_judged_only_by_its_timeouts(instance) -> None:
    run = _run(instance, pid=_gone_pid(), tags={HOST_TAG: "another-machine"})
    assert worker_status(instance, run).status == WorkerStatus.UNKNOWN
    assert clear_dead_runs(instance) == []
    timed = Settings(run_max_runtime=1)
    instance.handle_run_event(
        run.run_id, dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name="product_job")
    )
    time.sleep(1.2)
    [dead] = clear_dead_runs(instance, timed)
    assert "longer than 1 s" in dead.reason and dead.ended_as == "FAILURE"


def test_a_run_that_never_started_fails_after_the_start_timeout(instance) -> None:
    run = _run(instance, status=dg.DagsterRunStatus.NOT_STARTED)
    assert clear_dead_runs(instance, Settings(run_start_timeout=60)) == []
    time.sleep(1.1)
    [dead] = clear_dead_runs(instance, Settings(run_start_timeout=1))
    assert dead.run_id == run.run_id and "did not start within 1 s" in dead.reason
    assert clear_dead_runs(instance, Settings(run_start_timeout=0)) == []


def test_a_run_stuck_cancelling_is_marked_canceled(instance) -> None:
    run = _run(instance, status=dg.DagsterRunStatus.CANCELING)
    time.sleep(1.1)
    [dead] = clear_dead_runs(instance, Settings(run_cancel_timeout=1))
    assert dead.ended_as == "CANCELED"
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED


def test_an_ended_run_still_holding_a_slot_gives_it_back(instance) -> None:
    run = _run(instance, status=dg.DagsterRunStatus.FAILURE)
    _claim(instance, run)
    [dead] = clear_dead_runs(instance)
    assert (dead.ended_as, dead.pools, dead.status) == (None, (POOL,), "FAILURE")
    assert _holders(instance) == []


def test_mesh_runs_lists_and_clears_dead_runs(instance) -> None:
    run = _run(instance, pid=_gone_pid())
    _claim(instance, run)
    listed = CliRunner().invoke(app, ["runs", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert row["run_id"] == run.run_id and row["worker"].startswith("FAILED")
    cleared = CliRunner().invoke(app, ["runs", "--clear-dead"], terminal_width=200)
    assert cleared.exit_code == 0, cleared.output
    assert f"{run.run_id[:8]} product_job: marked FAILURE" in cleared.output
    assert f"freed {POOL}" in cleared.output and "1 dead run(s) cleared." in cleared.output
    assert "No run in progress." in CliRunner().invoke(app, ["runs"]).output
