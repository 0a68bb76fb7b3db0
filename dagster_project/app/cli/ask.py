"""`mesh ask` (a question or guarded SQL) and `mesh chat` (follow-ups keep context)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dagster_project.access.policy import AccessDenied
from dagster_project.ask import Answer, Asker, AskError

app = typer.Typer()
console = Console()

RoleOption = Annotated[str, typer.Option("--as", help="Access-policy role to ask as.")]


def _print(answer: Any, output: str) -> None:
    if output == "json":
        keys = ("question", "status", "interpretation", "semantic_query", "sql", "columns")
        keys += ("rows", "narrative", "provider", "choices", "unmatched")
        payload = {k: answer.as_dict()[k] for k in keys}
        typer.echo(json.dumps(payload, default=str))
        return
    if answer.columns:
        table = Table(*answer.columns)
        for row in answer.rows:
            table.add_row(*(f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row))
        console.print(table)
    if answer.interpretation:
        console.print(f"[dim]{answer.status}: {answer.interpretation}[/dim]", highlight=False)
    console.print(answer.narrative)
    for choice in answer.choices:
        console.print(f"  - {choice}", highlight=False)
    if answer.sql:
        console.print(f"[dim]{answer.sql}[/dim]", highlight=False)


@app.command("ask")
def ask(
    question: Annotated[str | None, typer.Argument(help="A question in plain words.")] = None,
    role: RoleOption = "analyst",
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    sql: Annotated[str | None, typer.Option("--sql", help="Run one guarded SELECT.")] = None,
) -> None:
    """Ask the mesh a question (or run `--sql`): answer table, narrative and the SQL."""
    if output not in {"table", "json"}:
        raise typer.BadParameter("--format is table or json")
    if not question and not sql:
        raise typer.BadParameter("give a QUESTION or --sql")
    asker = Asker(role=role)
    try:
        if sql:
            columns, rows, truncated = asker.run_sql(sql)
            note = f"{len(rows)} row(s){' (truncated)' if truncated else ''}."
            answer = Answer(sql, None, sql, columns, rows, note, provider="sql")
        else:
            answer = asker.ask(question)
    except (AskError, AccessDenied) as exc:
        console.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(1) from None
    _print(answer, output)


@app.command("chat")
def chat(role: RoleOption = "analyst") -> None:
    """Ask questions one after another; a follow-up ("and by region?") keeps context."""
    asker = Asker(role=role)
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
