"""`mesh share`: recipients, their profile files, and the sharing server.

Registered with the `mesh` command through the `meshwork.cli` entry point, so the
platform's CLI does not import governance code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(name="share", help="Delta Sharing: recipients, profiles and the server.")
console = Console()
DEFAULT_PORT = 8090


def default_endpoint(port: int = DEFAULT_PORT) -> str:
    from dagster_project import Settings

    return Settings.from_env().sharing_endpoint or f"http://127.0.0.1:{port}/delta-sharing"


def _profile_path(name: str, out: Path | None) -> Path:
    from dagster_project import get_settings

    if out is not None:
        return out
    settings = get_settings()
    if not settings.is_local:
        raise typer.BadParameter("MESH_HOME is not local: pass --out for the profile file")
    return Path(settings.files.path(settings.uri("sharing", "profiles", f"{name}.share")))


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Recipient name, e.g. acme.")],
    share: Annotated[list[str], typer.Option("--share", help="Share(s) to grant.")],
    days: Annotated[float | None, typer.Option(help="Token lifetime in days.")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Server URL in the profile.")] = None,
    out: Annotated[Path | None, typer.Option(help="Profile file to write.")] = None,
) -> None:
    """Add a recipient (or replace its shares and token) and write its profile file."""
    from dagster_project import get_settings
    from governance.sharing.config import RecipientStore, SharingConfig, write_profile

    config = SharingConfig.load()
    unknown = [s for s in share if config.share(s) is None]
    if unknown:
        raise typer.BadParameter(f"unknown share(s): {', '.join(unknown)}")
    recipient, token = RecipientStore(get_settings()).create(name, share, days=days)
    path = write_profile(
        _profile_path(name, out), endpoint or default_endpoint(), token, recipient.expires_at
    )
    console.print(f"Recipient [bold]{name}[/bold] may read {', '.join(recipient.shares)}.")
    console.print(f"Profile written to {path} (it holds the token: hand it over securely).")


@app.command("profile")
def profile(
    name: Annotated[str, typer.Argument(help="Recipient name.")],
    days: Annotated[float | None, typer.Option(help="Token lifetime in days.")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Server URL in the profile.")] = None,
    out: Annotated[Path | None, typer.Option(help="Profile file to write.")] = None,
) -> None:
    """Write a new profile file for a recipient. Tokens are stored hashed, so this issues
    a new token and the old profile stops working."""
    from dagster_project import get_settings
    from governance.sharing.config import RecipientStore, write_profile

    try:
        recipient, token = RecipientStore(get_settings()).rotate(name, days=days)
    except KeyError as exc:
        raise typer.BadParameter(str(exc)) from exc
    path = write_profile(
        _profile_path(name, out), endpoint or default_endpoint(), token, recipient.expires_at
    )
    console.print(f"New token for {name}; profile written to {path}.")


@app.command("list")
def list_shares() -> None:
    """Shares with their tables, and recipients (never their tokens)."""
    from dagster_project import Lake, get_settings
    from governance.sharing.config import RecipientStore, SharingConfig

    settings = get_settings()
    lake = Lake(settings)
    tables = Table(title="Shares")
    for column in ("share", "table", "product", "masked as role", "shared copy"):
        tables.add_column(column)
    for share in SharingConfig.load().shares.values():
        for t in share.tables:
            info = lake.info(t.shared_key)
            built = f"v{info.version}, {info.rows:,} rows" if info else "not built"
            tables.add_row(share.name, f"{t.schema}.{t.name}", t.product, t.role, built)
    console.print(tables)
    people = Table(title="Recipients")
    for column in ("recipient", "shares", "created", "expires"):
        people.add_column(column)
    for r in RecipientStore(settings).load().values():
        people.add_row(r.name, ", ".join(r.shares), r.created_at, r.expires_at or "never")
    console.print(people)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = DEFAULT_PORT,
) -> None:
    """Serve the Delta Sharing protocol at http://HOST:PORT/delta-sharing."""
    import uvicorn

    from governance.sharing.server import create_app

    console.print(f"Delta Sharing server: http://{host}:{port}/delta-sharing")
    # No access log: its lines would carry live signed file URLs. Every request is in
    # the audit product instead, under a verified name.
    uvicorn.run(create_app(), host=host, port=port, log_level="info", access_log=False)
