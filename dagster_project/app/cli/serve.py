"""`mesh serve` (the HTTP API and web page) and `mesh api-key` (the keys it accepts)."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from dagster_project.access.api_keys import ApiKeyStore
from dagster_project.access.policy import AccessPolicy
from dagster_project.app.services import require_free
from dagster_project.ask.api import create_app

app = typer.Typer()
console = Console()


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8070,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
) -> None:
    """Serve the HTTP API and the web page (search, product pages, ask)."""
    require_free(port, "mesh serve", f"choose another: `mesh serve --port {port + 1}`", host)
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
    if role not in AccessPolicy.load().roles:
        raise typer.BadParameter(f"unknown role {role!r}", param_hint="--role")
    created, clear = ApiKeyStore().create(name, role, days=days)
    expiry = f", expires {created.expires_at}" if created.expires_at else ""
    console.print(f"API key for {name} (role {role}{expiry}); send it as a Bearer token:")
    typer.echo(clear)


@keys_app.command("list")
def list_keys() -> None:
    """Key holders with their roles and expiry (never the keys)."""
    table = Table("name", "role", "created", "expires")
    for key in sorted(ApiKeyStore().load().values(), key=lambda k: k.name):
        expires = (key.expires_at or "never") + (" (expired)" if key.expired() else "")
        table.add_row(key.name, key.role, key.created_at, expires)
    console.print(table)


@keys_app.command("revoke")
def revoke_key(name: Annotated[str, typer.Argument(help="Whose key stops working.")]) -> None:
    """Revoke NAME's key at once (the server reads the keys on every request)."""
    try:
        ApiKeyStore().revoke(name)
    except KeyError as exc:
        console.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(1) from None
    console.print(f"Revoked the API key of {name}.")
