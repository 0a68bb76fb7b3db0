"""The mesh as `workspace.yaml` describes it: code locations and their definitions."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster_project.core.yamlfile import load_yaml

if TYPE_CHECKING:  # reading the workspace (ask, search) must not import Dagster
    import dagster as dg

WORKSPACE_FILE = "workspace.yaml"


@dataclass(frozen=True)
class Location:
    name: str
    module: str
    attribute: str = "defs"

    def load(self) -> dg.Definitions:
        return getattr(importlib.import_module(self.module), self.attribute)


def find_root(start: Path | None = None) -> Path:
    """The folder holding workspace.yaml: the current one or a parent."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / WORKSPACE_FILE).exists():
            return folder
    raise FileNotFoundError(f"no {WORKSPACE_FILE} in {here} or its parents")


def read_workspace(path: Path | None = None) -> list[Location]:
    """The locations of workspace.yaml, whose modules are importable from its folder (as
    `dagster dev -w` makes them: a workspace outside this repository needs no PYTHONPATH)."""
    path = path or find_root() / WORKSPACE_FILE
    document = load_yaml(path.read_text()) or {}
    if str(path.parent.resolve()) not in sys.path:
        sys.path.insert(0, str(path.parent.resolve()))
    locations = []
    for entry in document.get("load_from", []):
        target = entry.get("python_module")
        if isinstance(target, str):
            target = {"module_name": target}
        if not target:
            continue
        module = target["module_name"]
        locations.append(
            Location(target.get("location_name", module), module, target.get("attribute", "defs"))
        )
    return locations


GOVERNANCE = Location("governance", "governance.definitions")


def create_workspace(path: Path) -> None:
    """A new workspace.yaml holding the governance location (domains are added to it)."""
    path.write_text(
        "# One code location per domain, plus governance. "
        "`mesh new-domain NAME` adds entries here.\nload_from:"
    )
    add_location(path, GOVERNANCE)


def add_location(path: Path, location: Location) -> None:
    """Append a python_module entry to workspace.yaml, keeping its comments."""
    text = path.read_text().rstrip("\n")
    text += (
        f"\n  - python_module:\n      module_name: {location.module}\n"
        f"      attribute: {location.attribute}\n      location_name: {location.name}\n"
    )
    path.write_text(text)


def load_definitions(path: Path | None = None) -> dict[str, dg.Definitions]:
    return {loc.name: loc.load() for loc in read_workspace(path)}


def mesh_assets(definitions: dict[str, dg.Definitions]) -> list[dg.AssetsDefinition]:
    """Every materializable asset of the mesh (each key from the location that owns it).
    Only an `AssetsDefinition` has `is_materializable` (specs and source assets do not)."""
    assets: list[dg.AssetsDefinition] = []
    for defs in definitions.values():
        assets.extend(a for a in defs.assets or [] if getattr(a, "is_materializable", False))
    return assets


def mesh_resources(definitions: dict[str, dg.Definitions]) -> dict[str, Any]:
    """The resources the locations provide, by key (locations agree on shared keys such
    as `mesh`), so assets of several locations can run in one in-process run."""
    resources: dict[str, Any] = {}
    for defs in definitions.values():
        for key, resource in (defs.resources or {}).items():
            resources.setdefault(key, resource)
    return resources


def location_folder(location: Location) -> Path:
    """The package folder of a location's definitions module (found without importing it)."""
    spec = importlib.util.find_spec(location.module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(location.module)
    return Path(spec.origin).parent
