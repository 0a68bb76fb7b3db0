"""`mesh ask` (a question or guarded SQL), `mesh sql` (guarded SQL alone) and `mesh chat`
(follow-ups keep context)."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import dagster_project.ask.worker as worker
from dagster_project.access.policy import AccessDenied
from dagster_project.ask import Answer, Asker, AskError
from dagster_project.ask.values import cell
from dagster_project.core.errors import FAILED, USAGE, NothingBuilt

app = typer.Typer()
console = Console()
errors = Console(stderr=True)

RoleOption = Annotated[str, typer.Option("--as", help="Access-policy role to ask as.")]
FORMATS = ("table", "json", "csv")
FormatOption = Annotated[str, typer.Option("--format", help="table, json or csv")]


def _print(answer: Any, output: str) -> None:
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([answer.columns, *answer.rows])
        typer.echo(buffer.getvalue(), nl=False)
        return
    if output == "json":
        keys = ("question", "status", "interpretation", "semantic_query", "sql", "columns")
        keys += ("rows", "narrative", "provider", "choices", "unmatched")
        payload = {k: answer.as_dict()[k] for k in keys}
        typer.echo(json.dumps(payload, default=str))
        return
    if answer.columns:
        table = Table(*answer.columns)
        for row in answer.rows:
            table.add_row(*(cell(v) for v in row))
        console.print(table)
    if answer.interpretation:
        console.print(f"[dim]{answer.status}: {answer.interpretation}[/dim]", highlight=False)
    console.print(answer.narrative)
    for choice in answer.choices:
        console.print(f"  - {choice}", highlight=False)
    if answer.sql:
        console.print(f"[dim]{answer.sql}[/dim]", highlight=False)


def warn_excluded(asker: Asker) -> None:
    """A domain whose semantics.yaml is broken is left out, and its team is told why."""
    for note in asker.layer.excluded_notes():
        errors.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)


def require_built(asker: Asker) -> None:
    """NothingBuilt unless some product of the asker's layer has a table to ask about."""
    if not any(asker.lake.exists(key) for key in asker.layer.contracts):
        raise NothingBuilt(asker.lake.settings.home)


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
    _answer(
        lambda asker: _sql_answer(asker, sql) if sql else asker.ask(question),
        role,
        output,
        sql is not None,
    )


@app.command("sql")
def run_sql(
    query: Annotated[str, typer.Argument(help='One read-only SELECT, e.g. "SELECT ... FROM d.p".')],
    role: RoleOption = "analyst",
    output: FormatOption = "table",
) -> None:
    """Run one read-only SELECT over products, as a role: guarded, masked, audited.

    Tables are `domain.product`; the SQL passes the guard of `mesh ask --sql` and runs
    in its worker, over the role's granted columns with PII masked, within the limits."""
    _answer(lambda asker: _sql_answer(asker, query), role, output, True)


def _answer(ask: Any, role: str, output: str, is_sql: bool) -> None:
    """Run `ask(asker)` as `role` and print the answer; a refusal is one line."""
    if output not in FORMATS:
        raise typer.BadParameter(f"--format is one of {', '.join(FORMATS)}")
    worker.warm_up(wait=False)  # the query workers' fork server boots beside the set-up
    asker = Asker(role=role)
    require_built(asker)
    warn_excluded(asker)
    try:
        answer = ask(asker)
    except (AskError, AccessDenied) as exc:
        console.print(f"[red]refused:[/red] {exc}", highlight=False, soft_wrap=True)
        # SQL the guard rejects is the user's to fix (2); a limit (time, memory, size,
        # busy: AskError's subclasses) or the access policy refusing is an answer (1).
        bad_sql = is_sql and type(exc) is AskError
        raise typer.Exit(USAGE if bad_sql else FAILED) from None
    _print(answer, output)


def _sql_answer(asker: Asker, sql: str) -> Answer:
    columns, rows, truncated = asker.run_sql(sql)
    note = f"{len(rows)} row(s){' (truncated)' if truncated else ''}."
    return Answer(sql, None, sql, columns, rows, note, provider="sql")


@app.command("chat")
def chat(role: RoleOption = "analyst") -> None:
    """Ask questions one after another; a follow-up ("and by region?") keeps context."""
    asker = Asker(role=role)
    require_built(asker)
    warn_excluded(asker)
    console.print("Ask the mesh (empty line or 'quit' to stop).")
    while True:
        try:
            question = input("? ").strip()
        except EOFError:
            break
        if not question or question.lower() in {"quit", "exit"}:
            break
        try:
            _print(asker.ask(question, follow_up=asker.context is not None), "table")
        except (AskError, AccessDenied) as exc:
            console.print(f"[red]refused:[/red] {exc}")
