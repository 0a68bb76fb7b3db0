"""`mesh demo` and `mesh simulate`: the demo's commands, outside the platform.

They join `mesh` through the `meshwork.cli` entry point group (pyproject.toml), so
nothing in dagster_project/ imports the demo; they build on the platform's public
command-line parts (refresh with progress, status table, serving the UIs).
"""

from __future__ import annotations

import time
from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dagster_project.app.cli.instance import mesh_instance, quiet
from dagster_project.app.cli.run import refresh_with_progress, serve_ui
from dagster_project.app.cli.summary import asset_summary, print_summary
from dagster_project.app.services import demo_services, require_free_ports
from dagster_project.core.settings import MeshSettings, get_settings
from dagster_project.core.workspace import load_definitions, mesh_assets
from dagster_project.lake.storage import Lake
from demo import simulator

console = Console()


def simulate(
    days: Annotated[int, typer.Option(help="Days of data to land.")] = 7,
    scale: Annotated[
        int | None,
        typer.Option(
            help="Order lines over those days; default: the volume landed so far, else 10,000."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (fixed per home).")] = 42,
    start: Annotated[
        str | None,
        typer.Option(help="First day (YYYY-MM-DD); default: the day after the last landed one."),
    ] = None,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Land more days of retail data in landing/, so the sensors load them."""
    settings = get_settings()
    if scale is None:
        per_day = simulator.landed_lines_per_day(settings)
        scale = round(per_day * days) if per_day else 10_000
    result = simulator.simulate(
        settings,
        days=days,
        scale=scale,
        seed=seed,
        file_format=file_format,
        start=date.fromisoformat(start) if start else None,
    )
    mark_complete(settings, result.files)
    table = Table(
        title=f"Landed {result.dates[0]} .. {result.dates[-1]} in {settings.uri('landing')}"
    )
    table.add_column("product")
    table.add_column("rows", justify="right")
    for product, rows in result.rows.items():
        table.add_row(product, f"{rows:,}")
    console.print(table)


def mark_complete(settings: MeshSettings, files: list[str]) -> None:
    """With MESH_LANDING_STABLE=marker, tell the mesh the simulated files are complete, as
    any writer must: a `_SUCCESS` in each folder, newer than the files it completes."""
    if settings.landing_stable == "marker":
        for folder in sorted({uri.rsplit("/", 1)[0] for uri in files}):
            settings.files.write_text(f"{folder}/_SUCCESS", "")


def demo(
    scale: Annotated[int, typer.Option(help="Order lines to simulate.")] = 50_000,
    days: Annotated[int, typer.Option(help="Days to simulate.")] = 14,
    start: Annotated[
        str | None, typer.Option(help="First day (YYYY-MM-DD); default: `days` days before today.")
    ] = None,
    serve: Annotated[bool, typer.Option(help="Serve the Dagster UI afterwards.")] = True,
    port: Annotated[int, typer.Option(help="Dagster UI port.")] = 3000,
) -> None:
    """Simulate data, materialize and check every product once, then serve the UI."""
    quiet()
    if serve:  # a taken port fails now, not after minutes of building
        require_free_ports(demo_services(port))
    settings = get_settings()
    console.print(f"[bold]Meshwork demo[/bold] in {settings.home}")
    if settings.files.exists(settings.registry_uri("simulator", "state.json")):
        console.print(
            "Landing data already simulated here; reusing it "
            "(`mesh simulate` lands more, a new MESH_HOME starts over)."
        )
    else:
        with console.status(f"Simulating {days} days, {scale:,} order lines"):
            result = simulator.simulate(
                settings,
                days=days,
                scale=scale,
                start=date.fromisoformat(start) if start else None,
            )
        mark_complete(settings, result.files)
        wait = settings.landing_min_age  # files this new are not loaded yet
        if settings.landing_stable == "ticks" and wait > 0:
            with console.status(f"Letting the landed files settle ({wait:g} s)"):
                time.sleep(wait)
    instance = mesh_instance(settings)
    report = refresh_with_progress(settings, instance)
    assets = mesh_assets(load_definitions())
    print_summary(asset_summary(assets, report, instance, Lake(settings)))
    if serve:
        serve_ui(settings, port)
