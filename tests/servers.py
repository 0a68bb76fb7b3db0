"""Servers the tests start on loopback: a free port, and `mesh serve` over a mesh home."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def mesh_serve(home: Path) -> Iterator[str]:
    """`mesh serve` on a free port with MESH_HOME=home; yields its base URL once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "mesh"), "serve", "--port", str(port)],
        env={**os.environ, "MESH_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(base + "/api/products", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
