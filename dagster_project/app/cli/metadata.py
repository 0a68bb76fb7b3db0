"""`mesh search` and `mesh docs review`: discovery and the review of generated docs."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dagster_project.checks.quality.companion_contracts import discover_contracts
from dagster_project.core.settings import get_settings
from dagster_project.metadata.discovery import KINDS, Hit, mesh_index
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


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What you are looking for, in plain words.")],
    limit: Annotated[int, typer.Option("--limit", "-k", help="How many results.")] = 10,
    kind: Annotated[
        list[str] | None, typer.Option(help="Only these kinds: product, column, metric.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find products, columns and metrics by meaning, with the reason each matched."""
    warnings.filterwarnings("ignore")

    unknown = set(kind or ()) - set(KINDS)
    if unknown:
        raise typer.BadParameter(f"unknown kind(s) {sorted(unknown)}; use {', '.join(KINDS)}")
    index = mesh_index()
    for note in index.notes:
        Console(stderr=True).print(
            f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True
        )
    hits = index.search(query, k=limit, kinds=kind)
    if as_json:
        typer.echo(json.dumps([h.to_dict() for h in hits], indent=2))
        return
    print_hits(f"{query!r}: {len(hits)} result(s) · {index.model_label}", hits)
    if not hits:
        console.print("Nothing matched; try other words (names, synonyms, glossary terms).")


# Room the table's other columns (#, kind, score, a readable `why`) take beside the names.
ROOM_BESIDE_NAMES = 50


def print_hits(title: str, hits: list[Hit]) -> None:
    """The hits as a table whose names are never cut, or two lines each (the name, then
    kind, score and why) where the longest name leaves a narrow terminal no room."""
    if console.width < max((len(h.entry.title) for h in hits), default=0) + ROOM_BESIDE_NAMES:
        console.print(title, highlight=False)
        for rank, hit in enumerate(hits, start=1):
            console.print(f"{rank:>2}. {hit.entry.title}", highlight=False, soft_wrap=True)
            facts = f"{hit.entry.kind}, score {hit.score:.2f}: {'; '.join(hit.reasons)}"
            console.print(Padding(Text(facts, overflow="fold"), (0, 0, 0, 4), expand=False))
        return
    table = Table(title=title)
    for column in ("#", "kind", "name", "score", "why"):
        right = column in {"#", "score"}
        table.add_column(column, justify="right" if right else "left", no_wrap=column != "why")
    table.columns[-1].overflow = "fold"  # long words in reasons (entity names) too
    for rank, hit in enumerate(hits, start=1):
        table.add_row(
            str(rank), hit.entry.kind, hit.entry.title, f"{hit.score:.2f}", "; ".join(hit.reasons)
        )
    console.print(table)


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
