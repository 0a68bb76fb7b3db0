"""`mesh` with the plugins pyproject.toml declares under `meshwork.cli`: the installed
entry points (the package's metadata) only catch up with them when it is reinstalled."""

from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint

from dagster_project.app import cli
from tests.factories import REPO


def declared_plugins() -> list[EntryPoint]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["entry-points"][cli.PLUGIN_GROUP]
    plugins = [EntryPoint(name, target, cli.PLUGIN_GROUP) for name, target in declared.items()]
    return sorted(plugins, key=lambda ep: ep.name)
