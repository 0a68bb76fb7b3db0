"""`mesh ask` (a question or guarded SQL), `mesh sql` (guarded SQL alone) and `mesh chat`
(follow-ups keep context). A question goes to the warm process (`app/warm.py`) when one
runs, else it is answered here; both print the same payload (`app/answers.respond`).
The engine is imported only when answered here: a warm question does not load it."""

from __future__ import annotations

import csv
import io
import json
from importlib import import_module
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dagster_project.app import warm
from dagster_project.ask.values import cell
from dagster_project.core.errors import FAILED, USAGE, NothingBuilt

app = typer.Typer()
console = Console()
errors = Console(stderr=True)

RoleOption = Annotated[str, typer.Option("--as", help="Access-policy role to ask as.")]
FORMATS = ("table", "json", "csv")
FormatOption = Annotated[str, typer.Option("--format", help="table, json or csv")]


def _print(answer: dict[str, Any], output: str) -> None:
    """An answer's payload (`Answer.as_dict()`) as a table, JSON or CSV."""
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([answer["columns"], *answer["rows"]])
        typer.echo(buffer.getvalue(), nl=False)
        return
    if output == "json":
        keys = ("question", "status", "interpretation", "semantic_query", "sql", "columns")
        keys += ("rows", "narrative", "provider", "choices", "unmatched")
        typer.echo(json.dumps({k: answer[k] for k in keys}, default=str))
        return
    if answer["columns"]:
        table = Table(*answer["columns"])
        for row in answer["rows"]:
            table.add_row(*(cell(v) for v in row))
        console.print(table)
    if answer["interpretation"]:
        console.print(f"[dim]{answer['status']}: {answer['interpretation']}[/dim]", highlight=False)
    console.print(answer["narrative"])
    for choice in answer["choices"]:
        console.print(f"  - {choice}", highlight=False)
    if answer["sql"]:
        console.print(f"[dim]{answer['sql']}[/dim]", highlight=False)


def _said_first(reply: dict[str, Any]) -> None:
    """Nothing built yet is an error; the layer's notes go to stderr."""
    if "nothing_built" in reply:
        raise NothingBuilt(reply["nothing_built"])
    for note in reply.get("notes", []):
        errors.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)


def _answered_here() -> Any:
    """The in-process path: the engine and its imports, loaded only when it is taken."""
    return import_module(warm.ANSWERS)


@app.command("ask")
def ask(
    question: Annotated[str | None, typer.Argument(help="A question in plain words.")] = None,
    role: RoleOption = "analyst",
    output: FormatOption = "table",
    sql: Annotated[str | None, typer.Option("--sql", help="Run one guarded SELECT.")] = None,
) -> None:
    """Ask the mesh a question (or run `--sql`): answer table, narrative and the SQL."""
    if not question and not sql:
        raise typer.BadParameter("give a QUESTION or --sql")
    _answer({"sql": sql} if sql else {"question": question}, role, output)


@app.command("sql")
def run_sql(
    query: Annotated[str, typer.Argument(help='One read-only SELECT, e.g. "SELECT ... FROM d.p".')],
    role: RoleOption = "analyst",
    output: FormatOption = "table",
) -> None:
    """Run one read-only SELECT over products, as a role: guarded, masked, audited.

    Tables are `domain.product`; the SQL passes the guard of `mesh ask --sql` and runs
    in its worker, over the role's granted columns with PII masked, within the limits."""
    _answer({"sql": query}, role, output)


def _answer(request: dict[str, Any], role: str, output: str) -> None:
    """Answer `request` as `role` (warm, else here) and print it; a refusal is one line."""
    if output not in FORMATS:
        raise typer.BadParameter(f"--format is one of {', '.join(FORMATS)}")
    reply = warm.reply({**request, "role": role})
    _said_first(reply)
    if "refused" in reply:
        console.print(f"[red]refused:[/red] {reply['refused']}", highlight=False, soft_wrap=True)
        # SQL the guard rejects is the user's to fix (2); a limit (time, memory, size,
        # busy) or the access policy refusing is an answer (1).
        raise typer.Exit(USAGE if reply["bad_sql"] else FAILED)
    _print(reply["answer"], output)


@app.command("chat")
def chat(role: RoleOption = "analyst") -> None:
    """Ask questions one after another; a follow-up ("and by region?") keeps context."""
    here = _answered_here()
    asker = here.Asker(role=role)
    _said_first(here.opening(asker))
    console.print("Ask the mesh (empty line or 'quit' to stop).")
    while True:
        try:
            question = input("? ").strip()
        except EOFError:
            break
        if not question or question.lower() in {"quit", "exit"}:
            break
        reply = here.answer(asker, {"question": question}, follow_up=asker.context is not None)
        if "refused" in reply:
            console.print(f"[red]refused:[/red] {reply['refused']}")
        else:
            _print(reply["answer"], "table")
