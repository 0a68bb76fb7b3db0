"""`mesh scenario`: what-if projections on a domain's model, run as a real Dagster run.

The command finds the asset tagged `meshwork/scenario` in the workspace (the inventory
domain's `demand_scenario`), materializes it with the options as its config, and prints
the projection it reported. The platform never imports the domain: the workspace does.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import dagster as dg
import typer
from rich.console import Console
from rich.table import Table

from dagster_project.app.cli.instance import mesh_instance, quiet
from dagster_project.core.settings import get_settings
from dagster_project.core.workspace import load_definitions, mesh_assets, mesh_resources

SCENARIO_TAG = "meshwork/scenario"

app = typer.Typer()
console = Console()


@app.command()
def scenario(
    price_change: Annotated[
        float, typer.Option(help="Price change in percent (-10 is a 10% cut).")
    ] = 0.0,
    promotion: Annotated[
        float, typer.Option(help="A promotion's discount as a fraction (0.2 is 20% off).")
    ] = 0.0,
    demand_shock: Annotated[
        float, typer.Option(help="Demand above (+) or below (-) the forecast, in percent.")
    ] = 0.0,
    category: Annotated[str | None, typer.Option(help="Only this product category.")] = None,
    store: Annotated[int | None, typer.Option(help="Only this store (store_id).")] = None,
    region: Annotated[str | None, typer.Option(help="Only stores of this region.")] = None,
    days: Annotated[int, typer.Option(help="Days ahead to project (1..14).")] = 14,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What if prices, promotions or demand change? Projected units, revenue and
    stock-outs against the baseline forecast, per category, with a short narrative."""
    if not (price_change or promotion or demand_shock):
        raise typer.BadParameter("give --price-change, --promotion or --demand-shock")
    config = {
        "price_change_pct": price_change,
        "promotion_discount": promotion,
        "demand_shock_pct": demand_shock,
        "category": category,
        "store_id": store,
        "region": region,
        "days": days,
    }
    metadata = run_scenario(config)
    if as_json:
        keys = ("scenario", "narrative", "totals", "projection_rows")
        typer.echo(json.dumps({k: metadata[k] for k in keys}, indent=2, default=str))
        return
    _print(metadata)


def run_scenario(config: dict[str, Any]) -> dict[str, Any]:
    """Materialize the workspace's scenario asset with `config`; its metadata values."""
    quiet()
    settings = get_settings()
    definitions = load_definitions()
    found = [
        a for a in mesh_assets(definitions) if SCENARIO_TAG in (a.tags_by_key.get(a.key) or {})
    ]
    if not found:
        raise typer.BadParameter(f"no asset tagged {SCENARIO_TAG} in the workspace")
    asset = found[0]
    result = dg.materialize(
        [asset],
        resources=mesh_resources(definitions),  # the locations' own (they read MESH_HOME)
        instance=mesh_instance(settings),
        run_config={
            "ops": {asset.op.name: {"config": config}},
            "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        },
        tags={"meshwork/command": "mesh scenario"},
        raise_on_error=False,
    )
    if not result.success:
        failure = next((e for e in result.all_events if e.is_step_failure), None)
        reason = failure.event_specific_data.error.message if failure else "the run failed"
        raise typer.Exit(_fail(reason.strip().splitlines()[-1]))
    event = result.get_asset_materialization_events()[0]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _fail(message: str) -> int:
    console.print(f"[red]{message}[/red]")
    return 1


def _print(metadata: dict[str, Any]) -> None:
    table = Table(title=f"Scenario: {metadata['scenario']} (baseline → scenario)")
    columns = [
        ("category", "category"),
        ("baseline_units", "units"),
        ("scenario_units", "→ units"),
        ("units_change_pct", "Δ %"),
        ("baseline_revenue", "revenue"),
        ("scenario_revenue", "→ revenue"),
        ("revenue_change_pct", "Δ %"),
        ("baseline_stockouts", "stock-outs"),
        ("scenario_stockouts", "→"),
    ]
    for i, (_, title) in enumerate(columns):
        table.add_column(title, justify="left" if i == 0 else "right")
    rows = [*metadata["projection_rows"], {"category": "[bold]all[/bold]", **metadata["totals"]}]
    for row in rows:
        table.add_row(*[_cell(row.get(key), key) for key, _ in columns])
    console.print(table)
    console.print(metadata["narrative"])


def _cell(value: Any, key: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:+.1f}" if key.endswith("_pct") else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
