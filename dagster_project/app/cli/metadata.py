"""`mesh docs review`: the review of generated docs (`mesh search` is `cli/search.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from dagster_project.checks.quality.companion_contracts import discover_contracts
from dagster_project.core.settings import get_settings
from dagster_project.metadata.doc_review import (
    ACCEPTED,
    EDITED,
    REJECTED,
    SuggestionStore,
    apply_to_contract,
)

app = typer.Typer()
docs_app = typer.Typer(help="Generated documentation: review suggested contract updates.")
app.add_typer(docs_app, name="docs")
console = Console()


@docs_app.command()
def review(
    product: Annotated[str | None, typer.Option(help="Only this product (domain/product).")] = None,
    accept_all: Annotated[bool, typer.Option(help="Accept every pending suggestion.")] = False,
    reject_all: Annotated[bool, typer.Option(help="Reject every pending suggestion.")] = False,
    list_only: Annotated[bool, typer.Option("--list", help="Only list what is pending.")] = False,
) -> None:
    """Accept, edit or reject generated suggestions; accepted text goes into the contract."""
    store = SuggestionStore(get_settings())
    pending = store.pending(product)
    if not pending:
        console.print(
            "No pending suggestions. They appear after governance/product_docs is materialized."
        )
        return
    if list_only:
        _list(pending)
        return
    contracts = _contract_paths()
    for suggestion in pending:
        bulk = "a" if accept_all else "r" if reject_all else None
        choice = bulk or _ask(suggestion)
        if choice == "q":
            break
        if choice == "s":
            continue
        _decide(store, suggestion, choice, contracts)


def _list(pending) -> None:
    table = Table(title=f"{len(pending)} pending suggestion(s)")
    for column in ("id", "field", "suggested text", "by"):
        table.add_column(column)
    for s in pending:
        table.add_row(s.id, s.label, _text(s.value), f"{s.provenance['provider']}")
    console.print(table)


def _text(value: str | list[str]) -> str:
    return "\n".join(f"- {q}" for q in value) if isinstance(value, list) else value


def _ask(suggestion) -> str:
    by = suggestion.provenance
    console.print(
        Panel(
            _text(suggestion.value),
            title=suggestion.label,
            subtitle=f"{by['provider']} ({by['model']}) · {by['inputs_hash']}",
        )
    )
    while True:
        answer = typer.prompt("[a]ccept, [e]dit, [r]eject, [s]kip or [q]uit", default="s")
        if answer.strip().lower()[:1] in {"a", "e", "r", "s", "q"}:
            return answer.strip().lower()[:1]


def _decide(store, suggestion, choice: str, contracts: dict) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if choice == "r":
        store.decide(suggestion, REJECTED, now)
        console.print(f"rejected {suggestion.label}")
        return
    status = ACCEPTED
    if choice == "e":
        suggestion.value = _edit(suggestion.value)
        status = EDITED
    path = contracts.get(suggestion.product)
    if path is None:
        console.print(f"[red]no contract file for {suggestion.product}; skipped[/red]")
        return
    try:
        contract = apply_to_contract(path, suggestion)
    except (ValueError, KeyError) as exc:
        console.print(f"[red]{suggestion.label}: {exc}[/red]")
        return
    store.decide(suggestion, status, now)
    console.print(f"{status} {suggestion.label} → {path} (v{contract.version})")


def _edit(value: str | list[str]) -> str | list[str]:
    if isinstance(value, list):
        text = typer.prompt("Questions, separated by ';'", default="; ".join(value))
        return [q.strip() for q in text.split(";") if q.strip()]
    return typer.prompt("Text", default=value).strip()


def _contract_paths() -> dict:
    return {c.key: c.path for c in discover_contracts() if c.path is not None}
