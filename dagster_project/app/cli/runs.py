"""`mesh runs`: the runs not yet ended, and `--clear-dead` to end those that cannot finish."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dagster_project.app.cli.instance import mesh_instance, quiet
from dagster_project.app.runs import clear_dead_runs, in_progress, worker_status
from dagster_project.core.settings import get_settings

app = typer.Typer()
console = Console()


@app.command("runs")
def runs(
    clear_dead: Annotated[
        bool,
        typer.Option("--clear-dead", help="Fail runs whose worker is gone; free their pools."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Runs in progress and their workers; --clear-dead ends the dead ones.

    A dead run (its process killed, or past its start or cancel timeout) is marked failed
    and the concurrency-pool slots it held are freed, so its product's next run starts.
    The Dagster daemon's run monitoring does the same on its own (README: Operations).
    """
    quiet()
    instance = mesh_instance(get_settings())
    if clear_dead:
        cleared = [d.as_dict() for d in clear_dead_runs(instance)]
        if as_json:
            typer.echo(json.dumps(cleared, indent=2))
            return
        for dead in cleared:
            pools = f"; freed {', '.join(dead['pools'])}" if dead["pools"] else ""
            ended = f"marked {dead['ended_as']}" if dead["ended_as"] else "already ended"
            line = f"{dead['run_id'][:8]} {dead['job_name']}: {ended}, {dead['reason']}{pools}"
            console.print(line, soft_wrap=True)
        console.print(f"{len(cleared)} dead run(s) cleared.")
        return
    rows = [
        {
            "run_id": r.dagster_run.run_id,
            "job_name": r.dagster_run.job_name,
            "status": r.dagster_run.status.value,
            "started": _when(r.start_time or r.create_timestamp.timestamp()),
            "worker": str(worker_status(instance, r.dagster_run)),
        }
        for r in in_progress(instance)
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Runs not yet ended (started: UTC)", show_edge=False)
    for column in ("run", "job", "status", "started", "worker"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["run_id"][:8], *list(row.values())[1:])
    console.print(table if rows else "No run in progress.")


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%m-%d %H:%M:%S")
