"""Throwaway virtualenvs for tools whose pins conflict with the mesh's (the official
Delta Sharing client, Presidio, SDV): created once per pinned requirement set and
reused, so only the first run pays for the install."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

READY = ".meshwork-ready"


class VenvUnavailable(RuntimeError):
    """The virtualenv could not be created (e.g. the package registry is unreachable)."""


def venv_python(cache_dir: Path, requirements: list[str], *, timeout: float = 900) -> Path:
    """The python of a virtualenv holding exactly `requirements`, created if needed."""
    key = hashlib.sha256("\n".join([sys.version, *requirements]).encode()).hexdigest()[:16]
    root = cache_dir / f"venv-{key}"
    python = root / "bin" / "python"
    if (root / READY).exists() and python.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True)
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    try:
        subprocess.run(
            [*install, *requirements], check=True, capture_output=True, text=True, timeout=timeout
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = getattr(exc, "stderr", "") or ""
        tail = "\n".join(line for line in output.splitlines() if "WARNING" not in line)[-1500:]
        raise VenvUnavailable(f"pip install {' '.join(requirements)} failed: {tail}") from exc
    (root / READY).write_text("\n".join(requirements))
    return python


def cached_venv_python(request, tmp_path_factory, name: str, requirements: list[str]) -> Path:
    """`venv_python` under pytest's cache folder `name` (reused across runs; a temporary
    folder when the cache is off); skips the test when the virtualenv cannot be made."""
    cache_plugin = getattr(request.config, "cache", None)
    cache = (
        Path(cache_plugin.mkdir(name))
        if cache_plugin is not None
        else tmp_path_factory.mktemp(name)
    )
    try:
        return venv_python(cache, requirements)
    except VenvUnavailable as exc:
        pytest.skip(f"cannot create the {name} virtualenv (registry?): {exc}")
