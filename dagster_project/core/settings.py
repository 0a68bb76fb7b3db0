"""Where the mesh keeps its data: `MeshSettings`, the zones below one root (`MESH_HOME`, a
local path or object-store URI) and their `files`. The environment itself is read in
`core.environment` (re-exported here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from dagster_project.core.environment import (
    DEFAULT_HOME,
    ENGINE_PREFIX,
    LANDING_STABILITY,
    PARTITION_START,
    SECRET_NAME,
    Limits,
    Settings,
    SettingsError,
    environment_restored,
    get_limits,
    is_uri,
)
from dagster_project.core.filesystem import Files

__all__ = [
    "DEFAULT_HOME",
    "ENGINE_PREFIX",
    "LANDING_STABILITY",
    "PARTITION_START",
    "SECRET_NAME",
    "Files",
    "Limits",
    "MeshSettings",
    "Settings",
    "SettingsError",
    "environment_restored",
    "get_limits",
    "get_settings",
    "is_uri",
]


@dataclass(frozen=True)
class MeshSettings:
    """The mesh's storage layout below one root location, and the files there. Fields left
    out come from the environment (`MESH_HOME`, `MESH_STORAGE_OPTIONS`,
    `MESH_LANDING_STABLE`, `MESH_LANDING_MIN_AGE_SECONDS`)."""

    home: str = field(default_factory=lambda: Settings.from_env().home)
    storage_options: dict[str, str] = field(
        default_factory=lambda: Settings.from_env().storage_options
    )
    # When a landing file is complete enough to judge (README: "Landing files").
    landing_stable: str = field(default_factory=lambda: Settings.from_env().landing_stable)
    landing_min_age: float = field(default_factory=lambda: Settings.from_env().landing_min_age)

    def __post_init__(self) -> None:
        if not is_uri(self.home):
            object.__setattr__(self, "home", str(Path(self.home).expanduser().resolve()))

    def uri(self, *parts: str) -> str:
        return "/".join([self.home.rstrip("/"), *parts])

    @property
    def is_local(self) -> bool:
        return not is_uri(self.home) or self.home.startswith("file://")

    @cached_property
    def files(self) -> Files:
        return Files.at(self.home)

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


def get_settings() -> MeshSettings:
    """Settings for the current environment (read each call so tests can set MESH_HOME),
    read once: `MeshSettings()` reads the environment per field."""
    env = Settings.from_env()
    return MeshSettings(env.home, env.storage_options, env.landing_stable, env.landing_min_age)
