"""`mesh`: the command line of the mesh (typer + rich).

Every command honours MESH_HOME (default ./.mesh) and works from the folder holding
workspace.yaml (or any folder below it).
"""

from __future__ import annotations

import json
import os
import warnings
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dagster_project.app.cli_ask import app as ask_app
from dagster_project.app.cli_data import app as data_app
from dagster_project.app.cli_metadata import app as metadata_app
from dagster_project.app.cli_models import app as models_app
from dagster_project.core.settings import MeshSettings, get_settings

app = typer.Typer(help="Meshwork: an AI-driven data mesh on Dagster.", no_args_is_help=True)
console = Console()
app.add_typer(metadata_app)  # mesh search, mesh docs review
app.add_typer(data_app)  # mesh read (governed), mesh synth
app.add_typer(models_app)  # mesh scenario
app.add_typer(ask_app)  # mesh ask, mesh chat


def _add_plugins() -> None:
    """Subcommands registered under the `meshwork.cli` entry point (e.g. `mesh share`
    from governance), so the platform never imports them directly."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group="meshwork.cli"), key=lambda e: e.name):
        app.add_typer(ep.load(), name=ep.name)


_add_plugins()


def _quiet() -> None:
    # Dagster's beta/preview warnings are for library authors, not mesh users.
    warnings.filterwarnings("ignore")


NOT_JUDGED = "NOT_JUDGED"  # a check with too little data to judge (`mesh status`)
# One run at a time may write a product (each product asset has its own pool).
INSTANCE_CONFIG = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""


def dagster_home(settings: MeshSettings) -> Path:
    """The Dagster instance folder: DAGSTER_HOME, else MESH_HOME/dagster_home."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    if not settings.is_local:
        raise typer.BadParameter("set DAGSTER_HOME when MESH_HOME is an object-store URI")
    home = Path(settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_CONFIG)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _instance(settings: MeshSettings):
    import dagster as dg

    dagster_home(settings)
    return dg.DagsterInstance.get()


@app.command()
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
    from demo.simulator import landed_lines_per_day
    from demo.simulator import simulate as run_simulation

    settings = get_settings()
    if scale is None:
        per_day = landed_lines_per_day(settings)
        scale = round(per_day * days) if per_day else 10_000
    result = run_simulation(
        settings,
        days=days,
        scale=scale,
        seed=seed,
        file_format=file_format,
        start=date.fromisoformat(start) if start else None,
    )
    table = Table(
        title=f"Landed {result.dates[0]} .. {result.dates[-1]} in {settings.uri('landing')}"
    )
    table.add_column("product")
    table.add_column("rows", justify="right")
    for product, rows in result.rows.items():
        table.add_row(product, f"{rows:,}")
    console.print(table)


def _refresh_with_progress(settings: MeshSettings) -> list[dict]:
    from dagster_project.app.refresh import refresh
    from dagster_project.core.workspace import discover_contracts, load_definitions, mesh_assets

    instance = _instance(settings)
    assets = mesh_assets(load_definitions())
    total = sum(len(a.keys) for a in assets)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} assets"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("Materializing", total=total)

        def started(names: list[str]) -> None:
            progress.update(task, description=f"Materializing {', '.join(names)}")

        def done(names: list[str], result) -> None:
            progress.advance(task, len(names))
            if not result.success:
                progress.console.print(f"[red]run failed for {', '.join(names)}[/red]")

        report = refresh(
            assets,
            discover_contracts(),
            settings=settings,
            instance=instance,
            on_wave=started,
            on_done=done,
        )
    if not report.success:
        console.print("[red]Some runs failed; see the Dagster UI for their logs.[/red]")
    return product_status(settings, instance)


def product_status(settings: MeshSettings, instance=None) -> list[dict]:
    """One record per product of every location: size, version, freshness, checks."""
    from dagster_project.core.workspace import discover_contracts
    from dagster_project.lake.storage import Lake
    from dagster_project.products.builder import check_keys

    lake = Lake(settings)
    now = datetime.now(UTC)
    records = []
    for contract in discover_contracts():
        info = lake.info(contract.key)
        sla = contract.freshness
        checks = _latest_checks(instance, check_keys(contract)) if instance else {}
        age = now - info.last_update if info else None
        records.append(
            {
                "product": contract.key,
                "owner": contract.owner,
                "rows": info.rows if info else None,
                "delta_version": info.version if info else None,
                "last_update": info.last_update.isoformat(timespec="seconds") if info else None,
                "freshness": (
                    "never built"
                    if info is None
                    else "no SLA"
                    if sla is None
                    else "fresh"
                    if age <= sla.max_age
                    else "stale"
                ),
                "checks_passed": sum(1 for v in checks.values() if v == "SUCCEEDED"),
                "checks_failed": sorted(k for k, v in checks.items() if v == "FAILED"),
                "checks_not_judged": sorted(k for k, v in checks.items() if v == NOT_JUDGED),
                "checks_total": len(check_keys(contract)),
            }
        )
    return records


def _latest_checks(instance, keys) -> dict[str, str]:
    """Each check's latest status; NOT_JUDGED for a WARN failure with `skipped` metadata
    (too little data to judge, see `checks.quality.checks`)."""
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    return {k.name: _status(r) for k, r in latest.items()}


def _status(record) -> str:
    evaluation = record.evaluation
    if evaluation is not None and "skipped" in evaluation.metadata:
        return NOT_JUDGED
    return record.status.value


def _print_status(records: list[dict]) -> None:
    table = Table(title="Data products (updated: UTC; checks: passed/total)", show_edge=False)
    # Product names never wrap or shorten: they are what people copy from this table.
    table.add_column("product", no_wrap=True, min_width=max(len(r["product"]) for r in records))
    # Short headers and values: most names fit an 80-column terminal without wrapping.
    for col, justify in [
        ("rows", "right"),
        ("ver", "right"),
        ("updated", "left"),
        ("freshness", "left"),
        ("checks", "right"),
    ]:
        table.add_column(col, justify=justify)
    for r in records:
        checks = f"{r['checks_passed']}/{r['checks_total']}"
        if r["checks_not_judged"]:
            checks += f"; not judged: {', '.join(r['checks_not_judged'])}"
        if r["checks_failed"]:
            checks = f"[red]{checks}; failed: {', '.join(r['checks_failed'])}[/red]"
        table.add_row(
            r["product"],
            f"{r['rows']:,}" if r["rows"] is not None else "-",
            str(r["delta_version"] if r["delta_version"] is not None else "-"),
            (r["last_update"] or "-")[5:16].replace("T", " ") or "-",  # MM-DD HH:MM
            r["freshness"],
            checks,
        )
    console.print(table)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every product: rows, Delta version, last update, freshness and check results."""
    _quiet()
    settings = get_settings()
    instance = _instance(settings) if settings.is_local or os.environ.get("DAGSTER_HOME") else None
    records = product_status(settings, instance)
    if as_json:
        typer.echo(json.dumps(records, indent=2))
    else:
        _print_status(records)


@app.command()
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
    _quiet()
    from demo.simulator import simulate as run_simulation

    settings = get_settings()
    console.print(f"[bold]Meshwork demo[/bold] in {settings.home}")
    if settings.exists(settings.registry_uri("simulator", "state.json")):
        console.print(
            "Landing data already simulated here; reusing it "
            "(`mesh simulate` lands more, a new MESH_HOME starts over)."
        )
    else:
        with console.status(f"Simulating {days} days, {scale:,} order lines"):
            run_simulation(
                settings,
                days=days,
                scale=scale,
                start=date.fromisoformat(start) if start else None,
            )
    records = _refresh_with_progress(settings)
    _print_status(records)
    if serve:
        serve_ui(settings, port)


def serve_ui(settings: MeshSettings, port: int) -> None:
    """Serve the demo's UIs until interrupted."""
    from dagster_project.app.services import demo_services, serve
    from dagster_project.core.workspace import find_root

    env = {**os.environ, "MESH_HOME": settings.home, "DAGSTER_HOME": str(dagster_home(settings))}
    services = demo_services(port)
    for service in services:
        console.print(f"{service.name}: [link]{service.url}[/link]")
    console.print("Ctrl+C stops them.")
    serve(services, find_root(), env)


@app.command("new-domain")
def new_domain(
    name: Annotated[str, typer.Argument(help="Domain name, snake_case.")],
    product: Annotated[str, typer.Option(help="First product of the domain.")] = "records",
    owner: Annotated[str, typer.Option(help="Owner's email.")] = "owner@example.com",
) -> None:
    """Scaffold a domain code location and register it in workspace.yaml."""
    from dagster_project.app.scaffold import scaffold_domain
    from dagster_project.core.workspace import find_root

    created = scaffold_domain(find_root(), name, product=product, owner=owner)
    for path in created:
        console.print(f"created {path}")
    console.print(
        f"[green]Domain {name} added to workspace.yaml.[/green] Land files in "
        f"$MESH_HOME/landing/{name}/{product}/ and run `dagster dev -w workspace.yaml`."
    )


if __name__ == "__main__":
    app()
