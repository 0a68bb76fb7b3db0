"""The long-running servers `mesh demo` starts side by side (each in its own process
group, so stopping the demo stops every child they spawned)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dagster_project.core.errors import EnvironmentProblem
from dagster_project.core.settings import get_settings
from dagster_project.ml.tracking import default_artifact_root, default_tracking_uri

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    url: str
    port: int = 0  # the port it listens on (0: none to check)
    env: tuple[tuple[str, str], ...] = ()  # added to the environment it starts with


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on host:port (so a server there would fail)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def require_free(port: int, what: str, fix: str, host: str = "127.0.0.1") -> None:
    """EnvironmentProblem naming the service and the fix when `port` is taken."""
    if port and port_in_use(port, host):
        raise EnvironmentProblem(
            f"Port {port} ({what}) is already in use on {host}.",
            f"Stop what listens there, or {fix}.",
        )


def dagster_ui(port: int = 3000) -> Service:
    return Service(
        "Dagster UI",
        [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        f"http://127.0.0.1:{port}",
        port,
    )


def sharing_server(port: int = 8090) -> Service:
    """The Delta Sharing server (governance's, started as a `mesh` command so the
    platform does not import governance)."""
    return Service(
        "Delta Sharing server",
        [str(BIN / "mesh"), "share", "serve", "--port", str(port)],
        f"http://127.0.0.1:{port}/delta-sharing",
        port,
    )


def mlflow_ui(port: int = 5000) -> list[Service]:
    """The MLflow UI over the mesh's tracking database (none when MLFLOW_TRACKING_URI
    points at a tracking server: that server has its own UI)."""
    settings = get_settings()
    uri = default_tracking_uri(settings)
    if uri.startswith(("http://", "https://", "databricks")):
        return []
    command = [str(BIN / "mlflow"), "ui", "--backend-store-uri", uri]
    command += ["--default-artifact-root", default_artifact_root(settings)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    # MLflow's server imports a Starlette module Starlette deprecates (a UserWarning per
    # worker): theirs to fix, so ignored there only, by category and module.
    quiet = (("PYTHONWARNINGS", "ignore::UserWarning:mlflow.server.fastapi_app"),)
    return [Service("MLflow UI", command, f"http://127.0.0.1:{port}", port, quiet)]


def ask_server(port: int = 8070) -> Service:
    """The HTTP API and web page: search, product pages, ask the mesh (`mesh serve`)."""
    return Service(
        "Meshwork web page and API",
        [str(BIN / "mesh"), "serve", "--port", str(port)],
        f"http://127.0.0.1:{port}/",
        port,
    )


def demo_services(dagster_port: int = 3000) -> list[Service]:
    """What `mesh demo` serves; features with a UI or API add theirs here."""
    return [dagster_ui(dagster_port), sharing_server(), *mlflow_ui(), ask_server()]


def require_free_ports(services: list[Service]) -> None:
    """Fail before starting anything when a service's port is taken."""
    for service in services:
        fix = "choose another Dagster UI port: `mesh demo --port 3001`"
        if "dagster" not in service.command[0]:
            fix = "stop the other mesh serving there (another `mesh demo`?)"
        require_free(service.port, service.name, fix)


def start(service: Service, cwd: Path, env: dict[str, str], log: IO[bytes] | None = None):
    """Start `service` in its own process group; its output goes to `log` when given."""
    output = {"stdout": log, "stderr": subprocess.STDOUT} if log else {}
    env = {**env, **dict(service.env)}
    return subprocess.Popen(service.command, cwd=cwd, env=env, start_new_session=True, **output)


def stop(process: subprocess.Popen, grace_s: float = 15) -> None:
    """SIGTERM the whole group, then SIGKILL what is left (dagster dev may ignore TERM)."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def log_path(logs: Path, service: Service) -> Path:
    """The file a service's output goes to: `<logs>/<service name>.log`."""
    return logs / (re.sub(r"[^a-z0-9]+", "-", service.name.lower()).strip("-") + ".log")


def serve(
    services: list[Service], cwd: Path, env: dict[str, str], logs: Path | None = None
) -> tuple[Service, int] | None:
    """Run every service until Ctrl+C or until one of them exits; then stop them all.
    With `logs`, each service's output goes to its `log_path` there (the daemons log
    without end). Returns the service that exited on its own and its exit code."""
    require_free_ports(services)
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
    with ExitStack() as files:
        opened = [
            files.enter_context(log_path(logs, s).open("ab")) if logs else None for s in services
        ]
        processes = [start(s, cwd, env, log) for s, log in zip(services, opened, strict=True)]
        try:
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            ended = [(s, p.returncode) for s, p in zip(services, processes, strict=True)]
            for process in processes:
                stop(process)
    return next(((s, code) for s, code in ended if code is not None), None)
