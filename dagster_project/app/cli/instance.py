"""The Dagster instance the `mesh` commands run on: DAGSTER_HOME, else MESH_HOME/dagster_home."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import dagster as dg
import typer
import yaml

from dagster_project.app.runs import MeshRunLauncher, run_monitoring
from dagster_project.core.settings import MeshSettings, Settings

WRITTEN_BY_MESH = "# Written by `mesh` from its settings (README: Operations); edits are lost.\n"
# What `mesh` wrote before run monitoring: replaced by the current config too.
EARLIER_CONFIGS = {"telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: 1\n"}

# Each location's sensors and its automation evaluated side by side (Dagster: one by one).
DAEMON_THREADS = {
    "sensors": {"use_threads": True, "num_workers": 4},
    "auto_materialize": {"use_threads": True, "num_workers": 4},
}


def instance_config(settings: Settings) -> str:
    """The dagster.yaml of a mesh's instance: one run at a time may write a product (each
    product asset has its own pool), and run monitoring ends runs whose worker died and
    frees their pool slots (`MeshRunLauncher` tells it which workers are alive). The
    daemon evaluates sensors and automation in threads: serially, a slow governance tick
    delays every location's landing sensor (README: Operations)."""
    config = {
        "telemetry": {"enabled": False},
        "concurrency": {"pools": {"default_limit": 1}},
        **DAEMON_THREADS,
        "run_launcher": {"module": MeshRunLauncher.__module__, "class": MeshRunLauncher.__name__},
        "run_monitoring": run_monitoring(settings),
    }
    return WRITTEN_BY_MESH + yaml.safe_dump(config, sort_keys=False)


def quiet() -> None:
    """Quiet what is for library authors, not mesh users: Dagster's beta, preview and
    supersession warnings, and MLflow's INFO lines (database set-up, example checks)."""
    for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)
    # MLflow sets its loggers' level from this when it is first imported (later, lazily);
    # a level the user chose stays.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # in case it is imported already


def dagster_home(settings: MeshSettings) -> Path:
    """The Dagster instance folder: DAGSTER_HOME, else MESH_HOME/dagster_home, created if
    need be. Its dagster.yaml is `instance_config` unless someone else wrote it (a file
    `mesh` wrote is brought up to date). DAGSTER_HOME is set to it for what runs next."""
    env = Settings.from_env()
    configured = env.dagster_home
    if not configured and not settings.is_local:
        raise typer.BadParameter("set DAGSTER_HOME when MESH_HOME is an object-store URI")
    home = Path(configured or settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    current = config.read_text() if config.exists() else None
    wanted = instance_config(env)
    if current != wanted and (
        current is None or current.startswith(WRITTEN_BY_MESH) or current in EARLIER_CONFIGS
    ):
        config.write_text(wanted)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def existing_instance(settings: MeshSettings) -> dg.DagsterInstance | None:
    """The mesh's Dagster instance if its folder exists, else None: commands that only
    read (`mesh status`) create nothing."""
    configured = Settings.from_env().dagster_home
    home = configured or (settings.dagster_home if settings.is_local else None)
    return mesh_instance(settings) if home and Path(home).is_dir() else None


def mesh_instance(settings: MeshSettings) -> dg.DagsterInstance:
    """The Dagster instance of `settings`' mesh (see `dagster_home`)."""
    dagster_home(settings)
    return dg.DagsterInstance.get()
