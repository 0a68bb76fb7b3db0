"""`mesh refresh`: build and check products with real Dagster runs (the path `mesh demo`
takes), with a progress bar and a summary table."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import dagster as dg
import typer
from rich.console import Console
from rich.table import Table

from dagster_project.app.cli.instance import mesh_instance, quiet
from dagster_project.app.cli.run import refresh_with_progress
from dagster_project.app.refresh import (
    UP_TO_DATE,
    Outcome,
    SelectionError,
    Window,
    outcomes,
    select,
)
from dagster_project.app.runs import clear_dead_runs
from dagster_project.core.settings import get_settings
from dagster_project.metadata.semantics import load_semantic_layer

app = typer.Typer()
console = Console()


@app.command()
def refresh(
    products: Annotated[
        list[str] | None,
        typer.Option("--select", help="Products to build (domain/product or product); repeat."),
    ] = None,
    location: Annotated[str | None, typer.Option(help="Only this code location.")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="First day of daily products (YYYY-MM-DD).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last day of daily products (YYYY-MM-DD).")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Rebuild every landed day, not only new ones.")
    ] = False,
    debug: Annotated[bool, typer.Option(help="Show Dagster's logs and tracebacks.")] = False,
) -> None:
    """Build and check products now (all, a location's, or selected), with a summary.

    Real Dagster runs on the mesh's instance (the UI shows them), in dependency order;
    daily products over the days whose files are new or changed, or not built yet (every
    landed day with `--full`), or `--from`/`--to`. Exits 1 when a product or a blocking
    check failed."""
    quiet()
    settings = get_settings()
    window = _window(start, end)
    try:
        selection = select(location, products or ())
    except SelectionError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    # A domain whose semantics.yaml is broken (a name another domain declares first) is
    # left out of the layer: say so now, not in a run's log; the other domains build.
    for note in load_semantic_layer().excluded_notes():
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)
    instance = mesh_instance(settings)
    before_refresh(instance)
    report = refresh_with_progress(
        settings, instance, selection, window, logs=debug, incremental=not full
    )
    found = outcomes(report, selection.assets)
    print_outcomes(found)
    # A product asked for by name and skipped (nothing to build it from) is not done.
    skipped = products and any(o.status.startswith("skipped") for o in found)
    if skipped or not all(o.ok for o in found):
        raise typer.Exit(1)


def before_refresh(instance: dg.DagsterInstance) -> None:
    """End the runs a dead process left "started" and free their pool slots, so this
    refresh never queues behind them; say what was cleared."""
    for dead in clear_dead_runs(instance):
        ended = f"marked {dead.ended_as.lower()}" if dead.ended_as else "already ended"
        freed = f", freed pool(s) {', '.join(dead.pools)}" if dead.pools else ""
        console.print(
            f"dead run {dead.run_id[:8]} ({dead.job_name}): {dead.reason}; {ended}{freed}"
        )


def _window(start: str | None, end: str | None) -> Window | None:
    if start is None and end is None:
        return None
    try:
        first = date.fromisoformat(start) if start else date.min
        last = date.fromisoformat(end) if end else date.today()
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}; days are YYYY-MM-DD") from None
    if first > last:
        raise typer.BadParameter(f"--from {start} is after --to {end}")
    return first, last


def print_outcomes(found: list[Outcome]) -> None:
    """The summary table: one row per asset (two lines each where long names leave a
    narrow terminal no room for a table: names never shorten, `portal/p…` names none)."""
    if console.width < max((len(o.asset) for o in found), default=5) + 72:
        _print_stacked(found)
    else:
        table = Table()
        table.add_column("asset", no_wrap=True)
        for name in ("kind", "status", "rows", "ok", "failed", "not judged", "s"):
            table.add_column(name, overflow="fold")
        for o in found:
            table.add_row(o.asset, o.kind, _status(o), *_counts(o))
        console.print(table)
    _print_notes(found)


def _status(o: Outcome) -> str:
    if o.blocking_failed:
        return f"[red]blocked ({o.blocking_failed} blocking)[/red]"
    return o.status if o.ok else f"[red]{o.status}[/red]"


def _counts(o: Outcome) -> tuple[str, ...]:
    failed = f"[red]{o.failed}[/red]" if o.failed else "0"
    seconds = "" if o.seconds is None else f"{o.seconds:.1f}"
    return ("" if o.rows is None else f"{o.rows:,}", str(o.passed), failed, str(o.skipped), seconds)


def _print_stacked(found: list[Outcome]) -> None:
    for o in found:
        rows, passed, failed, skipped, seconds = _counts(o)
        facts = [o.kind, _status(o), f"{rows} rows" if rows else ""]
        facts += [f"checks {passed} ok, {failed} failed, {skipped} not judged"]
        facts += [f"{seconds} s" if seconds else ""]
        console.print(o.asset, highlight=False)
        console.print("    " + ", ".join(f for f in facts if f), highlight=False)


def _print_notes(found: list[Outcome]) -> None:
    for o in found:
        for note in o.notes:
            console.print(f"[red]{o.asset}[/red]: {note}" if not o.ok else f"{o.asset}: {note}")
    bad = [o.asset for o in found if not o.ok]
    if bad:
        console.print(f"[red]{len(bad)} of {len(found)} failed:[/red] {', '.join(bad)}")
    else:
        current = sum(o.status == UP_TO_DATE for o in found)
        rest = f", {current} up to date (`--full` rebuilds them)" if current else ""
        console.print(f"[green]{len(found) - current} asset(s) built and checked{rest}.[/green]")
