"""Ask the mesh in plain words: see `dagster_project.ask.engine`."""

from dagster_project.ask.engine import CANT_ANSWER, Answer, Asker
from dagster_project.ask.guard import GuardError, guard_sql
from dagster_project.ask.limits import AskError

__all__ = ["CANT_ANSWER", "Answer", "AskError", "Asker", "GuardError", "guard_sql"]
