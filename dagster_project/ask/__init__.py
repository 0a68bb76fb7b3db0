"""Ask the mesh in plain words: see `dagster_project.ask.engine`.

Names are imported on first use (PEP 562): `dagster_project.ask.values`, which the CLI
renders answers with, does not pull in the engine."""

from importlib import import_module
from typing import Any

_MODULE_OF = {
    "CANT_ANSWER": "dagster_project.ask.engine",
    "Answer": "dagster_project.ask.engine",
    "Asker": "dagster_project.ask.engine",
    "GuardError": "dagster_project.ask.guard",
    "guard_sql": "dagster_project.ask.guard",
    "AskError": "dagster_project.ask.limits",
}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'dagster_project.ask' has no attribute {name!r}")
    value = getattr(import_module(_MODULE_OF[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value
