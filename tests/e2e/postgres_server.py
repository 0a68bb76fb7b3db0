"""A real PostgreSQL server on loopback for tests: Debian's `postgresql` package,
installed on first use when missing (as CI does), in a throw-away data directory.

The server runs as the `postgres` system user when the tests run as root (initdb
refuses root) and only listens on 127.0.0.1 and a socket in its own directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import free_port

INSTALL_TIMEOUT_S = 420


class PostgresUnavailable(RuntimeError):
    """Why no server can be started here (the test is skipped with this message)."""


def postgres_bin() -> Path:
    """The newest installed server's bin folder, installing the package if needed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        _install()
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise PostgresUnavailable("PostgreSQL is not installed and could not be installed")
    return Path(found[-1]).parent


def _install() -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise PostgresUnavailable(
            "PostgreSQL server binaries are missing and this user cannot apt-get install them "
            "(run `apt-get install -y postgresql` as root)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
            subprocess.run(
                command, env=env, check=True, capture_output=True, timeout=INSTALL_TIMEOUT_S
            )
    except (subprocess.SubprocessError, OSError) as exc:
        raise PostgresUnavailable(f"installing PostgreSQL failed: {exc}") from exc


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def postgres_server(folder: Path, database: str = "dagster") -> Iterator[str]:
    """Start a server with a fresh cluster in `folder`; yields its connection URL."""
    bin_dir = postgres_bin()
    data, port = folder / "data", free_port()
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # the server user must reach its folder
        shutil.chown(folder, "postgres", "postgres")
        for parent in folder.parents:
            if parent == Path(parent.anchor):
                break
            parent.chmod(parent.stat().st_mode | 0o011)
    run = lambda *cmd: subprocess.run(  # noqa: E731
        _as_server_user([str(c) for c in cmd]), check=True, capture_output=True, timeout=120
    )
    run(bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", folder / "server.log", "-w", "start")
    try:
        run(bin_dir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", database)
        # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; dagster-postgres ships psycopg2.
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{database}"
    finally:
        run(bin_dir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
