"""The Dagster instance the `mesh` commands run on: DAGSTER_HOME, else MESH_HOME/dagster_home."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import dagster as dg
import typer

from dagster_project.core.settings import MeshSettings, Settings

# One run at a time may write a product (each product asset has its own pool).
INSTANCE_CONFIG = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""


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
    """The Dagster instance folder: DAGSTER_HOME, else MESH_HOME/dagster_home; a folder
    that does not exist yet is created with INSTANCE_CONFIG. DAGSTER_HOME is set to it
    for what runs next."""
    configured = Settings.from_env().dagster_home
    if configured and Path(configured).is_dir():
        return Path(configured)
    if not configured and not settings.is_local:
        raise typer.BadParameter("set DAGSTER_HOME when MESH_HOME is an object-store URI")
    home = Path(configured or settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_CONFIG)
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
