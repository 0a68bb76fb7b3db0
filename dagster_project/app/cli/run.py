"""Running the whole mesh from the command line: a refresh of every product with a
progress bar, and serving the mesh's UIs (what `mesh demo` is built from)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from dagster_project.app.cli.instance import dagster_home
from dagster_project.app.refresh import (
    QUIET,
    SILENT,
    RefreshReport,
    Selection,
    Window,
    refresh,
    select,
)
from dagster_project.app.services import demo_services, log_path, serve
from dagster_project.checks.quality.companion_contracts import discover_contracts
from dagster_project.core.settings import MeshSettings
from dagster_project.core.workspace import find_root

console = Console()


def refresh_with_progress(
    settings: MeshSettings,
    instance: dg.DagsterInstance,
    selection: Selection | None = None,
    window: Window | None = None,
    *,
    logs: bool = True,
    incremental: bool = False,
) -> RefreshReport:
    """Materialize and check the selected assets (default: every asset of every
    location) once, daily ones over `window` (default: the landed days), showing progress
    (and Dagster's warnings and errors unless `logs` is false)."""
    selection = selection or select()
    assets = selection.assets
    total = sum(len(a.keys) for a in assets)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} assets"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("Materializing", total=total)
        finished: set[str] = set()  # an asset runs once per stretch of days: count it once

        def started(names: list[str]) -> None:
            progress.update(task, description=f"Materializing {', '.join(names)}")

        def done(names: list[str], result: dg.ExecuteInProcessResult | None) -> None:
            progress.advance(task, len(set(names) - finished))
            finished.update(names)
            if result is not None and not result.success:
                progress.console.print(f"[red]run failed for {', '.join(names)}[/red]")

        report = refresh(
            assets,
            discover_contracts(),
            settings=settings,
            instance=instance,
            on_wave=started,
            on_done=done,
            resources=selection.resources,
            window=window,
            run_config=QUIET if logs else SILENT,
            incremental=incremental,
        )
    if report.skipped and logs:
        domains = sorted({key.split("/")[0] for key in report.skipped})
        console.print(
            f"Skipped {len(report.skipped)} asset(s) with nothing to build from yet "
            f"({', '.join(domains)}): land their files and refresh again."
        )
    if not report.success and logs:
        console.print("[red]Some runs failed; see the Dagster UI for their logs.[/red]")
    return report


def serve_ui(settings: MeshSettings, port: int) -> None:
    """Serve the mesh's UIs (the Dagster UI on `port`) until interrupted; their output
    (the daemon logs without end) goes to files under the mesh home, named once here."""
    home = dagster_home(settings)
    env = {**os.environ, "MESH_HOME": settings.home, "DAGSTER_HOME": str(home)}
    logs = Path(settings.home if settings.is_local else home) / "logs"
    services = demo_services(port)
    for service in services:
        console.print(f"{service.name}: [link]{service.url}[/link]")
    console.print(f"Their logs: {logs}/  (Ctrl+C stops them)", highlight=False)
    ended = serve(services, find_root(), env, logs)
    if ended:
        service, code = ended
        console.print(
            f"[red]{service.name} stopped (exit {code});[/red] see {log_path(logs, service)}"
        )
