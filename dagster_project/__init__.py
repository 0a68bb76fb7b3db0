"""Meshwork's self-serve platform: what domains and governance build on.

A domain needs only this:

    from dagster_project import derived, domain_definitions, landing

    defs = domain_definitions("sales", [landing("order_lines"), derived(...)],
                              contracts=Path(__file__).parent / "contracts")

The names load on first use (PEP 562), so importing a platform module (the `mesh`
command line, say) does not import Dagster and every layer first.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# The module that defines each public name.
_MODULES = {
    "dagster_project.ask.narratives": ["InsightsRun", "insights"],
    "dagster_project.assembly.locations": ["automation_sensor", "domain_definitions"],
    "dagster_project.core.contracts": [
        "Contract",
        "ContractError",
        "load_contract",
        "load_contracts",
    ],
    "dagster_project.core.settings": ["MeshSettings", "get_settings"],
    "dagster_project.lake.resource": ["MeshResource"],
    "dagster_project.lake.storage": ["DateWindow", "Lake"],
    "dagster_project.products.builder": ["Product", "asset_key", "derived", "landing"],
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'dagster_project' has no attribute {name!r}")
    value = getattr(import_module(_HOME[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
