"""`mesh ask` (a question or guarded SQL), `mesh chat` (follow-ups keep context) and
`mesh serve` (the HTTP API and web page)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer()
console = Console()

RoleOption = Annotated[str, typer.Option("--as", help="Access-policy role to ask as.")]


def _asker(role: str):
    from dagster_project.ask import Asker

    return Asker(role=role)


def _print(answer: Any, output: str) -> None:
    if output == "json":
        keys = ("question", "semantic_query", "sql", "columns", "rows", "narrative", "provider")
        payload = {k: answer.as_dict()[k] for k in keys}
        typer.echo(json.dumps(payload, default=str))
        return
    if answer.columns:
        table = Table(*answer.columns)
        for row in answer.rows:
            table.add_row(*(f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row))
        console.print(table)
    console.print(answer.narrative)
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
    from dagster_project.access.policy import AccessDenied
    from dagster_project.ask import Answer, AskError

    if output not in {"table", "json"}:
        raise typer.BadParameter("--format is table or json")
    if not question and not sql:
        raise typer.BadParameter("give a QUESTION or --sql")
    asker = _asker(role)
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
    from dagster_project.access.policy import AccessDenied
    from dagster_project.ask import AskError

    asker = _asker(role)
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


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8070,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
) -> None:
    """Serve the HTTP API and the web page (search, product pages, ask)."""
    import uvicorn

    from dagster_project.ask.api import create_app

    console.print(f"Meshwork web page: http://{host}:{port}/  (API docs: /docs)")
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")


keys_app = typer.Typer(help="API keys for `mesh serve`: each key reads as one access role.")
app.add_typer(keys_app, name="api-key")


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Argument(help="Who holds the key (audited as api:NAME).")],
    role: Annotated[str, typer.Option(help="Access-policy role the key reads as.")],
    days: Annotated[float | None, typer.Option(help="Expire after this many days.")] = None,
) -> None:
    """Create (or replace) NAME's key; the key is printed once and stored only hashed."""
    from dagster_project.access.api_keys import ApiKeyStore
    from dagster_project.access.policy import AccessPolicy

    if role not in AccessPolicy.load().roles:
        raise typer.BadParameter(f"unknown role {role!r}", param_hint="--role")
    created, clear = ApiKeyStore().create(name, role, days=days)
    expiry = f", expires {created.expires_at}" if created.expires_at else ""
    console.print(f"API key for {name} (role {role}{expiry}); send it as a Bearer token:")
    typer.echo(clear)


@keys_app.command("list")
def list_keys() -> None:
    """Key holders with their roles and expiry (never the keys)."""
    from dagster_project.access.api_keys import ApiKeyStore

    table = Table("name", "role", "created", "expires")
    for key in sorted(ApiKeyStore().load().values(), key=lambda k: k.name):
        expires = (key.expires_at or "never") + (" (expired)" if key.expired() else "")
        table.add_row(key.name, key.role, key.created_at, expires)
    console.print(table)


@keys_app.command("revoke")
def revoke_key(name: Annotated[str, typer.Argument(help="Whose key stops working.")]) -> None:
    """Revoke NAME's key at once (the server reads the keys on every request)."""
    from dagster_project.access.api_keys import ApiKeyStore

    try:
        ApiKeyStore().revoke(name)
    except KeyError as exc:
        console.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(1) from None
    console.print(f"Revoked the API key of {name}.")
