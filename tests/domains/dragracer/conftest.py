"""One real-data mesh for the dragracer tests: seasons S01-S03 of the show landed by the
domain's own export script into an empty home, then only the dragracer and governance
locations refreshed, as a team would after `mesh new-domain`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.app.refresh import RefreshReport, refresh
from dagster_project.checks.quality.companions import discover_contracts
from dagster_project.core.settings import MeshSettings
from dagster_project.core.workspace import load_definitions, mesh_assets
from dagster_project.lake.storage import Lake
from domains.dragracer.landing import Landed, land

SEASONS = ("S01", "S02", "S03")
LOCATIONS = ("dragracer", "governance")


@dataclass
class RealMesh:
    home: Path
    settings: MeshSettings
    lake: Lake
    instance: dg.DagsterInstance
    landed: Landed
    report: RefreshReport


def build_real_mesh(home: Path) -> RealMesh:
    """Seasons S01-S03 landed into `home` (MESH_HOME must be it), then only the dragracer
    and governance locations refreshed (bench/ask.py builds its dragracer home so too)."""
    settings = MeshSettings(home=str(home))
    landed = land(settings, SEASONS)
    definitions = load_definitions()
    assets = mesh_assets({name: definitions[name] for name in LOCATIONS})
    instance = dg.DagsterInstance.ephemeral()
    report = refresh(assets, discover_contracts(), settings=settings, instance=instance)
    return RealMesh(home, settings, Lake(settings), instance, landed, report)


@pytest.fixture(scope="session")
def real_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealMesh]:
    home = tmp_path_factory.mktemp("dragracer-mesh")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MESH_HOME", str(home))
        mp.delenv("MESH_STORAGE_OPTIONS", raising=False)
        mp.delenv("MESH_ACCESS_POLICY", raising=False)
        yield build_real_mesh(home)
