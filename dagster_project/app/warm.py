"""`mesh ask` and `mesh sql` through a warm process: a question costs what answering it
costs, not the imports, the semantic layer and the query workers' start each time.

The first question is answered in-process and starts `dagster_project.app.warm_server`
in the background; later ones go to it over a Unix socket in `<temp>/meshwork-<uid>/` (a
folder only its owner may enter; the server also checks the peer's user id) and get back the
very payload the in-process path prints. The socket's name is a digest of what
configures an answer (every MESH_*, OPENAI_*, DAGSTER_*, MLFLOW_*, SPARK_* variable, PYTHONPATH,
the working directory and the interpreter), so another configuration gets its own
process. The process ends after MESH_ASK_DAEMON_IDLE seconds without a question, and as
soon as a file it answers from changed (README: "Asking fast"); MESH_ASK_DAEMON=off
answers every question in-process. This module imports only the standard library and
the settings: it is what a warm question loads."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
from importlib import import_module
from pathlib import Path
from typing import Any

from dagster_project.core.environment import Settings, get_limits, is_uri

CONFIGURING = ("MESH_", "OPENAI_", "DAGSTER_", "MLFLOW_", "SPARK_", "PYTHONPATH")
SERVER_MODULE = "dagster_project.app.warm_server"
ANSWERS = "dagster_project.app.answers"  # what answers a request in this process
REPLY_MAX = 64 * 1024 * 1024  # an answer is at most the row limit's rows
RETRY_AFTER_FAILURE_S = 60.0


def socket_path(settings: Settings | None = None) -> Path | None:
    """Where this configuration's warm process listens, in a folder of this user's only
    (`<temp>/meshwork-<uid>`: a home's own path may be too long for a socket); None when
    there is none to use (switched off, a home on an object store, a folder someone
    else owns or may enter)."""
    settings = settings or Settings.from_env()
    if not settings.ask_daemon or is_uri(settings.home):
        return None
    folder = Path(tempfile.gettempdir()) / f"meshwork-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return folder / f"ask-{configuration_digest(settings)}.sock"


def configuration_digest(settings: Settings) -> str:
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith(CONFIGURING))
    home = str(Path(settings.home).expanduser().resolve())
    text = json.dumps([home, env, os.getcwd(), sys.executable])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def reply(request: dict[str, Any]) -> dict[str, Any]:
    """The payload for `request`: the warm process's, else answered in this process
    (`app/answers`, imported only then)."""
    warm = ask_warm(request)
    if warm is not None and "failed" not in warm:
        return warm
    return import_module(ANSWERS).answer_here(request)


def ask_warm(request: dict[str, Any]) -> dict[str, Any] | None:
    """The warm process's reply to `request`, or None: there is none (one is started
    for the next question), it is stopping, or it did not answer in time."""
    path = socket_path()
    if path is None:
        return None
    try:
        reply = _exchange(path, request)
    except (FileNotFoundError, ConnectionRefusedError):
        start(path)
        return None
    except OSError:  # a timeout or a broken connection: answered here instead
        return None
    if reply is None or reply.get("stale"):
        start(path)  # it ended: its sources changed
        return None
    return reply


def _exchange(path: Path, request: dict[str, Any]) -> dict[str, Any] | None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(2 * get_limits().query_timeout_s + 10)
        conn.connect(str(path))
        conn.sendall(json.dumps(request).encode() + b"\n")
        conn.shutdown(socket.SHUT_WR)
        chunks, size = [], 0
        while chunk := conn.recv(1 << 16):
            chunks.append(chunk)
            size += len(chunk)
            if size > REPLY_MAX:
                return None
    try:
        reply = json.loads(b"".join(chunks))
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None


def start(path: Path) -> None:
    """Start the warm process for `path` in its own session (it outlives this one); its
    output goes to `<socket>.log`. It inherits the socket's lock, taken here: none is
    started while another one holds it (starting, serving or ending)."""
    failed = path.with_suffix(".failed")
    if failed.exists() and time.time() - failed.stat().st_mtime < RETRY_AFTER_FAILURE_S:
        return  # it failed to start a moment ago (its log says why): questions stay here
    with open(path.with_suffix(".lock"), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        with open(path.with_suffix(".log"), "ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", SERVER_MODULE, str(path), str(lock.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                pass_fds=(lock.fileno(),),
            )
