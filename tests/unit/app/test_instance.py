"""The Dagster instance folder of `mesh` commands."""

from pathlib import Path

import dagster as dg
import pytest

from dagster_project.app.cli.instance import INSTANCE_CONFIG, mesh_instance
from dagster_project.core.settings import MeshSettings


def test_a_dagster_home_that_does_not_exist_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "not" / "yet" / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = mesh_instance(MeshSettings(home=str(tmp_path / "mesh")))
    assert isinstance(instance, dg.DagsterInstance)
    assert (home / "dagster.yaml").read_text() == INSTANCE_CONFIG
    assert Path(instance.root_directory) == home
