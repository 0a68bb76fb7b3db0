"""Where the mesh keeps its data: one root (`MESH_HOME`), local path or object-store URI.

Everything else derives from it, so a deployment changes one variable. Paths are
handled as URIs through `pyarrow.fs`, never with `os.path`, so `s3://`, `gs://`
and `az://` roots work the same as a local folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

import pyarrow.fs as pafs

DEFAULT_HOME = "./.mesh"
# First day a daily partition may exist; the simulator never lands data before it.
PARTITION_START = date(2024, 1, 1)


def _is_uri(location: str) -> bool:
    return "://" in location


@dataclass(frozen=True)
class MeshSettings:
    """The mesh's storage layout below one root location."""

    home: str = field(default_factory=lambda: os.environ.get("MESH_HOME", DEFAULT_HOME))
    storage_options: dict[str, str] = field(default_factory=lambda: _env_storage_options())

    def __post_init__(self) -> None:
        if not _is_uri(self.home):
            object.__setattr__(self, "home", str(Path(self.home).expanduser().resolve()))

    def uri(self, *parts: str) -> str:
        return "/".join([self.home.rstrip("/"), *parts])

    @property
    def is_local(self) -> bool:
        return not _is_uri(self.home) or self.home.startswith("file://")

    # -- zones -----------------------------------------------------------------
    def landing_uri(self, domain: str, product: str | None = None) -> str:
        return self.uri("landing", domain, *([product] if product else []))

    def quarantine_uri(self, domain: str) -> str:
        return self.uri("quarantine", domain)

    def table_uri(self, domain: str, product: str) -> str:
        return self.uri("lake", domain, product)

    def registry_uri(self, *parts: str) -> str:
        """Mesh bookkeeping (published contract versions, simulator state)."""
        return self.uri("registry", *parts)

    def reports_uri(self, *parts: str) -> str:
        return self.uri("reports", *parts)

    @property
    def dagster_home(self) -> str:
        return self.uri("dagster_home")

    # -- filesystem ------------------------------------------------------------
    @cached_property
    def fs(self) -> pafs.FileSystem:
        fs, _ = pafs.FileSystem.from_uri(self.home)
        return fs

    def fs_path(self, uri: str) -> str:
        """The path `self.fs` understands for a URI below the home."""
        if not _is_uri(uri):
            return uri
        _, path = pafs.FileSystem.from_uri(uri)
        return path

    def list_files(self, uri: str) -> list[str]:
        """Files directly below `uri` (sorted), as URIs; empty when it does not exist."""
        selector = pafs.FileSelector(self.fs_path(uri), allow_not_found=True)
        infos = [i for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File]
        base = uri.rstrip("/")
        return sorted(f"{base}/{i.base_name}" for i in infos)

    def list_dirs(self, uri: str) -> list[str]:
        selector = pafs.FileSelector(self.fs_path(uri), allow_not_found=True)
        infos = self.fs.get_file_info(selector)
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def exists(self, uri: str) -> bool:
        return self.fs.get_file_info(self.fs_path(uri)).type != pafs.FileType.NotFound

    def file_info(self, uri: str) -> pafs.FileInfo:
        return self.fs.get_file_info(self.fs_path(uri))

    def makedirs(self, uri: str) -> None:
        self.fs.create_dir(self.fs_path(uri), recursive=True)

    def write_bytes(self, uri: str, data: bytes) -> None:
        parent = uri.rsplit("/", 1)[0]
        self.makedirs(parent)
        with self.fs.open_output_stream(self.fs_path(uri)) as out:
            out.write(data)

    def write_text(self, uri: str, text: str) -> None:
        self.write_bytes(uri, text.encode())

    def write_private_text(self, uri: str, text: str) -> None:
        """Write a file of secrets (or their digests): readable by its owner only where the
        mesh home is local; on an object store the bucket's access policy decides."""
        self.write_text(uri, text)
        if self.is_local:
            os.chmod(self.fs_path(uri), 0o600)

    def read_bytes(self, uri: str) -> bytes:
        with self.fs.open_input_stream(self.fs_path(uri)) as stream:
            return stream.read()

    def read_text(self, uri: str) -> str:
        return self.read_bytes(uri).decode()

    def move(self, src: str, dst: str) -> None:
        self.makedirs(dst.rsplit("/", 1)[0])
        self.fs.move(self.fs_path(src), self.fs_path(dst))


def _env_storage_options() -> dict[str, str]:
    """Object-store options as JSON in `MESH_STORAGE_OPTIONS`; delta-rs and polars
    also read the provider's usual variables (AWS_*, AZURE_*, GOOGLE_*) themselves."""
    raw = os.environ.get("MESH_STORAGE_OPTIONS")
    return json.loads(raw) if raw else {}


def get_settings() -> MeshSettings:
    """Settings for the current environment (read each call so tests can set MESH_HOME)."""
    return MeshSettings()


# -- limits on what one caller can make the mesh do (README: Security) -----------------------
def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {raw!r}")
    return value


def _env_int(name: str, default: int) -> int:
    return int(_env_number(name, default))


@dataclass(frozen=True)
class Limits:
    """Hard limits of every query (`mesh ask`, `mesh chat`, the HTTP API and page,
    insights) and of every request to the mesh's servers."""

    query_timeout_s: float = field(default_factory=lambda: _env_number("MESH_QUERY_TIMEOUT_S", 10))
    query_memory_mb: int = field(default_factory=lambda: _env_int("MESH_QUERY_MEMORY_MB", 1024))
    query_threads: int = field(default_factory=lambda: _env_int("MESH_QUERY_THREADS", 2))
    query_temp_mb: int = field(default_factory=lambda: _env_int("MESH_QUERY_TEMP_MB", 1024))
    query_result_mb: int = field(default_factory=lambda: _env_int("MESH_QUERY_RESULT_MB", 32))
    # Queries running at once in one process, and for one caller (principal).
    query_workers: int = field(default_factory=lambda: _env_int("MESH_QUERY_WORKERS", 4))
    query_workers_per_caller: int = field(
        default_factory=lambda: _env_int("MESH_QUERY_WORKERS_PER_CALLER", 2)
    )
    max_sql_chars: int = field(default_factory=lambda: _env_int("MESH_MAX_SQL_CHARS", 20_000))
    max_question_chars: int = field(
        default_factory=lambda: _env_int("MESH_MAX_QUESTION_CHARS", 2_000)
    )
    max_body_bytes: int = field(default_factory=lambda: _env_int("MESH_MAX_BODY_BYTES", 65_536))
    # Audit rows per minute for requests nobody could be verified for (bad tokens, forged URLs).
    unverified_audits_per_minute: int = field(
        default_factory=lambda: _env_int("MESH_UNVERIFIED_AUDITS_PER_MINUTE", 60)
    )


def get_limits() -> Limits:
    """Limits for the current environment (read each call, like `get_settings`)."""
    return Limits()
