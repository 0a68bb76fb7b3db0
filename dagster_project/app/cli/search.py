"""`mesh search`: products, columns and metrics by meaning, with the reason each matched.

Like a question, a search goes to the warm process when one runs (`app/warm.py`), else
it is answered here; both print the same payload (`app/answers.found`). The index is
imported only when answered here."""

from __future__ import annotations

import json
import warnings
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from dagster_project.app import warm

app = typer.Typer()
console = Console()

# Room the table's other columns (#, kind, score, a readable `why`) take beside the names.
ROOM_BESIDE_NAMES = 50


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
    request = {"search": query, "k": limit, "kinds": kind}
    reply = warm.reply(request)
    if "unknown_kinds" in reply:
        known = ", ".join(reply["known_kinds"])
        raise typer.BadParameter(f"unknown kind(s) {reply['unknown_kinds']}; use {known}")
    for note in reply["notes"]:
        Console(stderr=True).print(
            f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True
        )
    hits = reply["hits"]
    if as_json:
        typer.echo(json.dumps(hits, indent=2))
        return
    print_hits(f"{query!r}: {len(hits)} result(s) · {reply['model_label']}", hits)
    if not hits:
        console.print("Nothing matched; try other words (names, synonyms, glossary terms).")


def print_hits(title: str, hits: list[dict[str, Any]]) -> None:
    """The hits (`Hit.to_dict()`) as a table whose names are never cut, or two lines each
    (the name, then kind, score and why) where the longest name leaves a narrow terminal
    no room."""
    if console.width < max((len(h["title"]) for h in hits), default=0) + ROOM_BESIDE_NAMES:
        console.print(title, highlight=False)
        for rank, hit in enumerate(hits, start=1):
            console.print(f"{rank:>2}. {hit['title']}", highlight=False, soft_wrap=True)
            facts = f"{hit['kind']}, score {hit['score']:.2f}: {'; '.join(hit['reasons'])}"
            console.print(Padding(Text(facts, overflow="fold"), (0, 0, 0, 4), expand=False))
        return
    table = Table(title=title)
    for column in ("#", "kind", "name", "score", "why"):
        right = column in {"#", "score"}
        table.add_column(column, justify="right" if right else "left", no_wrap=column != "why")
    table.columns[-1].overflow = "fold"  # long words in reasons (entity names) too
    for rank, hit in enumerate(hits, start=1):
        table.add_row(
            str(rank), hit["kind"], hit["title"], f"{hit['score']:.2f}", "; ".join(hit["reasons"])
        )
    console.print(table)
