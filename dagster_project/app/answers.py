"""What `mesh ask` and `mesh sql` print for a request, as one payload: answered in this
process, or by the warm process (`app/warm_server.py`), with the same function."""

from __future__ import annotations

from typing import Any

import dagster_project.ask.worker as worker
from dagster_project.access.policy import AccessDenied
from dagster_project.ask.engine import Answer, Asker
from dagster_project.ask.limits import AskError
from dagster_project.metadata.discovery import KINDS, SemanticIndex, mesh_index

__all__ = [
    "Asker",
    "answer",
    "answer_here",
    "found",
    "opening",
    "respond",
    "search_here",
    "sql_answer",
    "warm_up",
]


def respond(asker: Asker, request: dict[str, Any]) -> dict[str, Any]:
    """The payload `mesh ask`/`mesh sql` prints for `request` ({"question"} or {"sql"}):
    the answer or a refusal with the layer's notes, or that nothing is built."""
    opened = opening(asker)
    return opened if "nothing_built" in opened else {**opened, **answer(asker, request)}


def opening(asker: Asker) -> dict[str, Any]:
    """What is said before any answer: nothing is built yet, or the layer's notes (a
    domain whose semantics.yaml is broken is left out, and its team is told why)."""
    layer, lake = asker.layer, asker.lake
    if not any(lake.exists(key) for key in layer.contracts):
        return {"nothing_built": lake.settings.home}
    return {"notes": layer.excluded_notes()}


def answer(asker: Asker, request: dict[str, Any], *, follow_up: bool = False) -> dict[str, Any]:
    """{"answer": the answer's payload} or {"refused": why, "bad_sql": the user's SQL}."""
    sql = request.get("sql")
    try:
        if sql is not None:
            found = sql_answer(asker, sql)
        else:
            found = asker.ask(request["question"], follow_up=follow_up)
    except (AskError, AccessDenied) as exc:
        # SQL the guard rejects is the user's to fix; a limit or the policy is an answer.
        return {"refused": str(exc), "bad_sql": sql is not None and type(exc) is AskError}
    return {"answer": found.as_dict()}


def warm_up() -> None:
    """Boot the query workers' fork server beside the set-up of a question."""
    worker.warm_up(wait=False)


def sql_answer(asker: Asker, sql: str) -> Answer:
    columns, rows, truncated = asker.run_sql(sql)
    note = f"{len(rows)} row(s){' (truncated)' if truncated else ''}."
    return Answer(sql, None, sql, columns, rows, note, provider="sql")


def found(index: SemanticIndex, request: dict[str, Any]) -> dict[str, Any]:
    """What `mesh search` prints for {"search", "k", "kinds"}: the hits (`Hit.to_dict()`),
    the index's notes and model, or the kinds it does not know."""
    kinds = request.get("kinds") or None
    unknown = sorted(set(kinds or ()) - set(KINDS))
    if unknown:
        return {"unknown_kinds": unknown, "known_kinds": list(KINDS)}
    hits = index.search(request["search"], k=int(request.get("k") or 10), kinds=kinds)
    return {
        "notes": list(index.notes),
        "model_label": index.model_label,
        "hits": [h.to_dict() for h in hits],
    }


def search_here(request: dict[str, Any]) -> dict[str, Any]:
    """`found` over the index built in this process."""
    return found(mesh_index(), request)


def answer_here(request: dict[str, Any]) -> dict[str, Any]:
    """A request of `mesh ask`, `mesh sql` or `mesh search` answered in this process."""
    if "search" in request:
        return search_here(request)
    warm_up()  # the query workers' fork server boots beside the set-up
    return respond(Asker(role=request["role"]), request)
