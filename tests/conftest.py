"""Shared fixtures: a mesh home per test and small hand-written contracts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from dagster_project.app import cli
from dagster_project.core.contracts import Contract, load_contract
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.storage import Lake
from tests.factories import CONTRACT_FILES, contract_document
from tests.mesh_cli import declared_plugins


@pytest.fixture(scope="session", autouse=True)
def landing_files_settle_at_once() -> Iterator[None]:
    """Tests land a file and load it at once: no minimum age (MESH_LANDING_MIN_AGE_SECONDS)
    unless a test sets one. Session-wide, so session fixtures building a mesh see it too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESH_LANDING_MIN_AGE_SECONDS", "0")
        # Questions are answered in-process: no warm process outlives a test (the warm
        # path's own tests switch it on).
        patch.setenv("MESH_ASK_DAEMON", "off")
        yield


@pytest.fixture
def mesh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MeshSettings:
    """A fresh mesh below tmp_path; MESH_HOME points there (MeshResource's default)."""
    monkeypatch.setenv("MESH_HOME", str(tmp_path))
    monkeypatch.delenv("MESH_STORAGE_OPTIONS", raising=False)
    return MeshSettings(home=str(tmp_path))


@pytest.fixture
def mesh_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """MESH_HOME and DAGSTER_HOME below tmp_path, for `mesh` commands."""
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "mesh"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    return {"MESH_HOME": str(tmp_path / "mesh")}


@pytest.fixture
def lake(mesh_home: MeshSettings) -> Lake:
    return Lake(mesh_home)


@pytest.fixture(scope="session")
def demo_contracts() -> dict[str, Contract]:
    """Every contract of the repository, by `domain/product`."""
    contracts = [load_contract(p) for p in CONTRACT_FILES]
    return {c.key: c for c in contracts}


@pytest.fixture
def make_contract() -> Callable[..., Contract]:
    """`make_contract(properties, **options)`: a Contract from `contract_document`."""

    def make(properties: list[dict[str, Any]] | None = None, **options: Any) -> Contract:
        return Contract(contract_document(properties, **options), "<test contract>")

    return make


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow sqlite database, migrated once per session (seconds each time)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    uri = f"sqlite:///{path}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
    return path


@pytest.fixture
def mlflow_home(
    mesh_home: MeshSettings, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch
) -> MeshSettings:
    """`mesh_home` with an empty MLflow database where MLflowResource looks by default."""
    import shutil

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    shutil.copy(mlflow_template, Path(mesh_home.home) / "mlflow.db")
    return mesh_home


@pytest.fixture
def declared_mesh(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    """`mesh` with the plugins pyproject.toml declares (see tests/mesh_cli.py)."""
    monkeypatch.setattr(cli, "plugins", declared_plugins)
    return cli.app
