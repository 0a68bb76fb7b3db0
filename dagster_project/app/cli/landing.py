"""`mesh landing`: the files behind the landed products — list the quarantined ones with
their reasons, release one after a fix, retract a file's rows (audited, with a dry run).

Exit codes (as every command's, `core/errors.py`): 0 done (a dry run too); 2 a mistake,
told in one line with what to do (an unknown or ambiguous file, a product without a
primary key, a release onto a file still in landing, a missing or empty `--reason`);
3 no mesh or workspace here."""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dagster_project.checks.quality.companion_contracts import discover_contracts
from dagster_project.core.contracts import Contract
from dagster_project.core.errors import ENVIRONMENT, USAGE
from dagster_project.core.settings import MeshSettings, get_settings
from dagster_project.lake.lineage import (
    LineageError,
    Retraction,
    find_landing_file,
    find_quarantined,
    quarantined,
    release,
    retract,
)
from dagster_project.lake.storage import Lake

app = typer.Typer()
landing_app = typer.Typer(
    help="Landing files: list the quarantined, release one after a fix, retract a file's rows.",
    no_args_is_help=True,
)
app.add_typer(landing_app, name="landing")
console = Console(soft_wrap=True)  # paths and messages are copied: never broken
FileArgument = Annotated[
    str, typer.Argument(help="The file: its name, DOMAIN/PRODUCT/NAME, or its path.")
]


def _fail(message: str, code: int = USAGE) -> typer.Exit:
    console.print(f"[red]{message}[/red]", highlight=False)
    return typer.Exit(code)


def _mesh() -> MeshSettings:
    """The mesh's settings; exit 1 with the fix when MESH_HOME holds no mesh."""
    settings = get_settings()
    if settings.is_local and not Path(settings.home).is_dir():
        raise _fail(
            f"no mesh at {settings.home}: set MESH_HOME, or run `mesh demo` first", ENVIRONMENT
        )
    return settings


def _contracts() -> list[Contract]:
    try:
        return discover_contracts()
    except FileNotFoundError as exc:
        raise _fail(f"{exc}: run mesh from your project's folder", ENVIRONMENT) from None


def _principal() -> str:
    return f"cli:{getpass.getuser()}"


@landing_app.command("list")
def list_quarantined(
    product: Annotated[str | None, typer.Option(help="Only this DOMAIN/PRODUCT.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The quarantined files, oldest first, with why each was set aside."""
    settings = _mesh()
    found = quarantined(settings, product)
    if as_json:
        typer.echo(json.dumps([asdict(q) for q in found], indent=2, default=str))
        return
    if not found:
        console.print("No quarantined files.")
        return
    table = Table("product", "file", "quarantined (UTC)", "reason", show_edge=False)
    for item in found:
        when = item.quarantined_at[:19].replace("T", " ")
        table.add_row(item.product, item.name, when, item.reason)
    console.print(table)
    folder = settings.uri("quarantine")
    console.print(
        f"Fix a file where it lies ({folder}/DOMAIN/PRODUCT/), then `mesh landing release FILE`."
    )


@landing_app.command("release")
def release_file(file: FileArgument) -> None:
    """Move a quarantined file back into landing after a fix; it is judged again."""
    settings = _mesh()
    try:
        item = find_quarantined(settings, file)
        target = release(settings, item, principal=_principal())
    except LineageError as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"Released {item.original} into {target.rsplit('/', 1)[0]}: the landing sensor or "
        f"the next run of {item.product} judges it again."
    )


@landing_app.command("retract")
def retract_file(
    file: FileArgument,
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit entry).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")] = False,
) -> None:
    """Remove the rows a landing file brought, move it out of landing, audit it."""
    settings = _mesh()
    if not reason.strip():
        raise _fail("--reason must say why the file is retracted")
    try:
        contract, found = find_landing_file(settings, _contracts(), file)
        done = retract(
            Lake(settings),
            contract,
            found,
            reason=reason,
            principal=_principal(),
            dry_run=dry_run,
        )
    except LineageError as exc:
        raise _fail(str(exc)) from None
    _print_retraction(done)


def _print_retraction(done: Retraction) -> None:
    kept = (
        f"; {done.rows_restored:,} row(s) stay, as {', '.join(done.kept_by)} "
        f"{'also brings' if len(done.kept_by) == 1 else 'also bring'} them"
        if done.rows_restored
        else ""
    )
    if done.dry_run:
        console.print(
            f"Would remove {done.rows_removed:,} row(s) of {done.product} brought by "
            f"{done.file}{kept}, and move the file out of landing. Nothing changed."
        )
        return
    version = f" (Delta version {done.delta_version})" if done.delta_version is not None else ""
    console.print(
        f"Removed {done.rows_removed:,} row(s) of {done.product} brought by {done.file}"
        f"{version}{kept}.\nMoved the file to {done.moved_to}; audited in {done.audit_uri}."
    )
