"""`dagster dev` as a test fixture: start it on a free port, drive it over GraphQL, stop it.

The server runs in its own process group (session) so that stopping it also stops the
webserver, the daemon, the code servers and any run worker they started. Dagster maps
SIGTERM to whatever SIGINT does; a process started from a non-interactive shell inherits
SIGINT as *ignored* and would then ignore SIGTERM too, so the server starts with SIGINT
back to its default. Anything still alive after the grace period is killed (on a small
machine a graceful `dagster dev` shutdown takes 10-20 s, mostly its code servers).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import requests
import yaml

from dagster_project.app.cli.instance import instance_config
from dagster_project.core.settings import Settings
from tests.servers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).parent / "dagster"

# A test instance: no telemetry, a queue polled every second, and runs requested by
# sensors, automation, schedules and backfills held in the queue (limit 0). The daemon
# still evaluates everything, but the only run that executes is the one a test launches,
# so background work neither competes for the CPU nor writes the tables a test checks.
TEST_INSTANCE_YAML = """\
telemetry:
  enabled: false
run_queue:
  dequeue_interval_seconds: 1
  tag_concurrency_limits:
    - key: dagster/sensor_name
      limit: 0
    - key: dagster/schedule_name
      limit: 0
    - key: dagster/backfill
      limit: 0
"""
# ...and, like every instance `mesh` writes, run monitoring with the mesh's launcher.
_MONITORING = {"run_launcher", "run_monitoring"}
TEST_INSTANCE_YAML += yaml.safe_dump(
    {k: v for k, v in yaml.safe_load(instance_config(Settings())).items() if k in _MONITORING},
    sort_keys=False,
)

TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}

LOCATIONS_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
    ... on PythonError { message }
  }
}
"""

LAUNCH_RUN = """
mutation LaunchRun($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on UnauthorizedError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

RUN_STATUS = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""

RUN_EVENTS = """
query RunEvents($runId: ID!) {
  logsForRun(runId: $runId, limit: 1000) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message level stepKey }
        ... on ExecutionStepFailureEvent { error { message causes { message } } }
        ... on RunFailureEvent { error { message causes { message } } }
      }
    }
  }
}
"""


# Exec the command with SIGINT back to its default disposition (which exec keeps); a
# preexec_fn would do the same but is unsafe when the test process has threads (xdist).
_SIGINT_DEFAULT_EXEC = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


@dataclass
class DagsterDev:
    """A running `dagster dev` and a small GraphQL client for it."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @classmethod
    def start(
        cls,
        *,
        dagster_home: Path,
        log_path: Path,
        env: dict[str, str] | None = None,
        workspace: Path = REPO_ROOT / "workspace.yaml",
        instance_yaml: str = TEST_INSTANCE_YAML,
    ) -> DagsterDev:
        """Start `dagster dev -w workspace` with `DAGSTER_HOME=dagster_home` (created,
        with `instance_yaml` as its dagster.yaml). The server sees the current environment
        without its `MESH_*` variables, plus `env`."""
        dagster_home.mkdir(parents=True, exist_ok=True)
        (dagster_home / "dagster.yaml").write_text(instance_yaml)
        port = free_port()
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("MESH_")}
        dev = [str(DAGSTER), "dev", "-w", str(workspace), "-p", str(port), "-h", "127.0.0.1"]
        command = [sys.executable, "-c", _SIGINT_DEFAULT_EXEC, *dev]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env={**inherited, **(env or {}), "DAGSTER_HOME": str(dagster_home)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(process, port, log_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    # -- lifecycle ---------------------------------------------------------------------
    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after `grace` seconds."""
        pgid = self.process.pid  # the session leader leads its own group
        self._signal_group(pgid, signal.SIGTERM)
        if not self._wait_group_gone(pgid, grace):
            self._signal_group(pgid, signal.SIGKILL)
            self._wait_group_gone(pgid, 5.0)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)

    def _wait_group_gone(self, pgid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self.process.poll()  # reap the leader; orphaned children are reaped by init
            if not _group_members(pgid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _diagnose(self, message: str) -> str:
        return f"{message}\n--- tail of {self.log_path} ---\n{self.log_tail()}"

    # -- GraphQL -----------------------------------------------------------------------
    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = requests.post(
            self.url, json={"query": query, "variables": variables}, timeout=60
        )
        response.raise_for_status()
        payload = response.json()
        if payload.get("errors"):
            raise AssertionError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def wait_for_locations(
        self, names: Iterable[str], *, timeout: float = 180.0, poll: float = 1.0
    ) -> list[dict[str, Any]]:
        """Wait until every named code location is LOADED; a location that fails to load,
        or the server exiting, fails at once with the error."""
        expected = set(names)
        deadline = time.monotonic() + timeout
        entries: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    self._diagnose(f"dagster dev exited with {self.process.returncode}")
                )
            try:
                workspace = self.graphql(LOCATIONS_QUERY)["workspaceOrError"]
            except requests.RequestException:  # webserver not up yet
                time.sleep(poll)
                continue
            if workspace["__typename"] != "Workspace":
                raise AssertionError(self._diagnose(f"workspace error: {workspace}"))
            entries = workspace["locationEntries"]
            for entry in entries:
                error = entry["locationOrLoadError"]
                if error and error["__typename"] == "PythonError":
                    raise AssertionError(
                        f"code location {entry['name']!r} failed to load:\n{error['message']}"
                    )
            loaded = {e["name"] for e in entries if e["loadStatus"] == "LOADED"}
            if expected <= loaded:
                return entries
            time.sleep(poll)
        raise AssertionError(
            self._diagnose(f"code locations {sorted(expected)} not loaded in {timeout}s: {entries}")
        )

    def launch_assets(
        self,
        location: str,
        asset_keys: Sequence[Sequence[str]],
        *,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Launch a run of the implicit asset job materializing `asset_keys` (with all
        their checks); returns the run id."""
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": "__repository__",
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": list(key)} for key in asset_keys],
            },
            "mode": "default",
            "executionMetadata": {
                "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]
            },
        }
        result = self.graphql(LAUNCH_RUN, params=params)["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise AssertionError(f"launchRun failed: {result}")
        return result["run"]["runId"]

    def wait_for_run(self, run_id: str, *, timeout: float = 180.0, poll: float = 1.0) -> str:
        """Wait for a run to finish; anything but SUCCESS fails with the run's errors."""
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            run = self.graphql(RUN_STATUS, runId=run_id)["runOrError"]
            if run["__typename"] != "Run":
                raise AssertionError(f"run {run_id}: {run}")
            status = run["status"]
            if status in TERMINAL_RUN_STATUSES:
                break
            time.sleep(poll)
        if status == "SUCCESS":
            return status
        finished = status in TERMINAL_RUN_STATUSES
        what = f"ended {status}" if finished else f"still {status} after {timeout}s"
        raise AssertionError(
            self._diagnose(f"run {run_id} {what}; its events:\n{self.run_events(run_id)}")
        )

    def run_events(self, run_id: str) -> str:
        """The run's log above DEBUG, errors and their causes included (for failures)."""
        logs = self.graphql(RUN_EVENTS, runId=run_id)["logsForRun"]
        lines = []
        for event in logs.get("events", []):
            if event.get("level") == "DEBUG" and not event.get("error"):
                continue
            lines.append(f"{event['__typename']} {event.get('level')}: {event.get('message')}")
            error = event.get("error") or {}
            for part in [error, *error.get("causes", [])] if error else []:
                lines.append(f"    {part['message'].strip()}")
        return "\n".join(lines) or str(logs)


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members
