"""The Dagster instance folder of `mesh` commands, and the instance config it writes."""

from pathlib import Path

import dagster as dg
import pytest
import yaml

import dagster_project
from dagster_project.app.cli.instance import (
    EARLIER_CONFIGS,
    WRITTEN_BY_MESH,
    instance_config,
    mesh_instance,
)
from dagster_project.app.runs import MeshRunLauncher, run_monitoring
from dagster_project.core.settings import MeshSettings, Settings

DEPLOYED = Path(dagster_project.__file__).parent / "app" / "deploy" / "dagster.yaml"


def test_a_dagster_home_that_does_not_exist_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "not" / "yet" / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = mesh_instance(MeshSettings(home=str(tmp_path / "mesh")))
    assert isinstance(instance, dg.DagsterInstance)
    assert (home / "dagster.yaml").read_text() == instance_config(Settings())
    assert Path(instance.root_directory) == home


def test_the_instance_monitors_runs_with_the_settings_timeouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("MESH_RUN_START_TIMEOUT", "45")
    monkeypatch.setenv("MESH_RUN_MONITOR_INTERVAL", "5")
    instance = mesh_instance(MeshSettings(home=str(tmp_path / "mesh")))
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_start_timeout_seconds == 45
    assert instance.run_monitoring_poll_interval_seconds == 5
    assert instance.run_monitoring_max_resume_run_attempts == 0
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 10
    assert isinstance(instance.run_launcher, MeshRunLauncher)
    assert instance.run_launcher.supports_check_run_worker_health


def test_a_config_mesh_wrote_earlier_is_brought_up_to_date_and_a_users_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = MeshSettings(home=str(tmp_path / "mesh"))
    config = tmp_path / "dagster_home" / "dagster.yaml"
    config.parent.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(config.parent))
    for earlier in [*EARLIER_CONFIGS, WRITTEN_BY_MESH + "run_monitoring: {enabled: false}\n"]:
        config.write_text(earlier)
        mesh_instance(settings)
        assert config.read_text() == instance_config(Settings())
    config.write_text("telemetry:\n  enabled: true\n")  # the operator's own
    mesh_instance(settings)
    assert config.read_text() == "telemetry:\n  enabled: true\n"


def test_the_deployed_instance_monitors_runs_with_the_default_timeouts() -> None:
    deployed = yaml.safe_load(DEPLOYED.read_text())
    written = yaml.safe_load(instance_config(Settings()))
    assert deployed["run_monitoring"] == run_monitoring(Settings())
    assert deployed["run_launcher"] == written["run_launcher"]
    assert deployed["concurrency"]["pools"] == written["concurrency"]["pools"]
    for daemon in ("sensors", "auto_materialize"):  # ticks side by side, in both
        assert deployed[daemon] == written[daemon] == {"use_threads": True, "num_workers": 4}
