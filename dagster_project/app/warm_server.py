"""The warm process behind `mesh ask` and `mesh sql` (`dagster_project.app.warm`).

    python -m dagster_project.app.warm_server SOCKET LOCK_FD

It holds what `mesh serve` holds (the semantic layer, the governed reader, the
interpreter with its vocabulary, the background audit writer, the query workers' fork
server) and answers each request with a new `Asker` for the request's role, as a one-off
`mesh ask` would. Before each answer it compares a mark of the files it answers from
(workspace.yaml, every location's folder, the access policy, the platform's code); when
one changed it replies "stale" and ends, so a new grant, contract or semantic layer is
never answered with the old one. One process per socket (a lock file); connections
from another user are refused (SO_PEERCRED)."""

from __future__ import annotations

import json
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

import dagster_project
from dagster_project.access.policy import AuditWriter, GovernedReader
from dagster_project.app.answers import Asker, found, respond
from dagster_project.ask.vocabulary import Interpreter
from dagster_project.core.settings import Settings, get_limits
from dagster_project.core.workspace import (
    WORKSPACE_FILE,
    find_root,
    location_folder,
    read_workspace,
)
from dagster_project.lake.storage import Lake
from dagster_project.metadata.discovery import SemanticIndex, mesh_index
from dagster_project.metadata.semantics import load_semantic_layer

REQUEST_MAX = 1 << 20
SOURCE_SUFFIXES = (".py", ".yaml", ".yml", ".sql", ".json")


def source_mark() -> str:
    """Size and time of every file an answer depends on besides the lake (whose changes
    the vocabulary's fingerprint sees): the workspace, each location's folder, the access
    policy named by the environment, the platform's code."""
    roots = [Path(dagster_project.__file__).parent, find_root() / WORKSPACE_FILE]
    roots += [Path(location_folder(entry)) for entry in read_workspace()]
    if policy := Settings.from_env().access_policy:
        roots.append(Path(policy))
    seen = []
    for root in roots:
        files = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
        for file in files:
            if file.suffix in SOURCE_SUFFIXES and "__pycache__" not in file.parts:
                info = file.stat()
                seen.append(f"{file}:{info.st_size}:{info.st_mtime_ns}")
    return "\n".join(seen)


class Warm:
    """The state shared by every request, and when the process should end."""

    def __init__(self) -> None:
        self.mark = source_mark()
        self.lake = Lake()
        self.layer = load_semantic_layer()
        self.reader = GovernedReader(self.lake)
        self.limits = get_limits()
        self.interpreter = Interpreter()
        self.audit_writer = AuditWriter(self.reader)  # audit rows, behind the answer
        self.last = time.monotonic()
        self.busy = 0  # requests being answered
        self._index: SemanticIndex | None = None
        self.lock = threading.Lock()
        self.ending = threading.Event()

    def asker(self, role: str) -> Asker:
        return Asker(
            self.lake,
            self.layer,
            self.reader,
            role=role,
            limits=self.limits,
            parser=self.interpreter(self.layer, self.lake),
            audit_writer=self.audit_writer,
        )

    def reply(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.busy += 1
        try:
            if self.ending.is_set() or source_mark() != self.mark:
                self.ending.set()
                return {"stale": True}
            if "search" in request:
                return found(self.index(), request)
            return respond(self.asker(str(request.get("role") or "analyst")), request)
        finally:
            with self.lock:
                self.busy -= 1
                self.last = time.monotonic()

    def index(self) -> SemanticIndex:
        """The discovery index, built at the first search (the sources it is built from
        are in the mark: it is never older than they are)."""
        with self.lock:
            if self._index is None:
                self._index = mesh_index()
            return self._index

    def idle_for(self) -> float:
        """Seconds since the last answer; 0 while one is being answered."""
        with self.lock:
            return 0.0 if self.busy else time.monotonic() - self.last


class _Handler(socketserver.StreamRequestHandler):
    server: _Server
    timeout = 30  # a connection that sends nothing does not hold its thread for ever

    def handle(self) -> None:
        creds = self.request.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        _, uid, _ = struct.unpack("3i", creds)
        if uid != os.getuid():
            return  # another user's process: no answer at all
        try:
            request = json.loads(self.rfile.readline(REQUEST_MAX))
            reply = self.server.warm.reply(request) if isinstance(request, dict) else {}
        except Exception as exc:  # the client answers in-process, with the real error
            reply = {"failed": f"{type(exc).__name__}: {exc}"}
        self.wfile.write(json.dumps(reply, default=str).encode())


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, warm: Warm):
        self.warm = warm
        super().__init__(str(path), _Handler)


def serve(path: Path, lock_fd: int) -> None:
    """Answer on `path` until idle for MESH_ASK_DAEMON_IDLE seconds or stale; `lock_fd`
    is the socket's lock, taken by the process that started this one."""
    with open(lock_fd, "a+") as lock:
        lock.truncate(0)
        lock.write(str(os.getpid()))  # who serves it (`kill $(cat ask-….lock)` stops it)
        lock.flush()
        try:
            warm = Warm()
        except Exception:
            path.with_suffix(".failed").touch()  # the next questions do not start it again
            raise
        path.with_suffix(".failed").unlink(missing_ok=True)
        idle = Settings.from_env().ask_daemon_idle
        path.unlink(missing_ok=True)
        os.umask(0o077)
        server = _Server(path, warm)
        server.timeout = 0.5
        signal.signal(signal.SIGTERM, lambda *_: warm.ending.set())  # ends as when stale
        warm.last = time.monotonic()  # idle from now, not from before the set-up
        try:
            while not warm.ending.is_set() and warm.idle_for() < idle:
                server.handle_request()
        finally:
            path.unlink(missing_ok=True)
            server.server_close()
            warm.audit_writer.flush()
            log = path.with_suffix(".log")
            if log.exists() and not log.stat().st_size:
                log.unlink()  # nothing to say: not left behind


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]))
