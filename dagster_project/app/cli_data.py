"""`mesh read` (the governed read path) and `mesh synth` (synthetic data) commands."""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer()
console = Console()


def _product_contract(product: str):
    from dagster_project.checks.quality.companions import discover_contracts

    found = {c.key: c for c in discover_contracts()}
    if product not in found:
        raise typer.BadParameter(f"no product {product}; products: {', '.join(sorted(found))}")
    return found[product]


@app.command("read")
def read(
    product: Annotated[str, typer.Argument(help="domain/product")],
    role: Annotated[str, typer.Option(help="Access-policy role to read as.")],
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to return.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows.")] = False,
) -> None:
    """Read a product as a role: granted columns only, PII masked, the read audited."""
    from dagster_project.access.policy import AccessDenied, GovernedReader

    reader = GovernedReader()
    wanted = [c.strip() for c in columns.split(",")] if columns else None
    try:
        frame = reader.read(
            product, role, wanted, limit, principal=f"cli:{getpass.getuser()}", channel="cli"
        )
    except AccessDenied as exc:
        console.print(f"[red]denied:[/red] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(frame.to_dicts(), default=str, indent=1))
        return
    table = Table(title=f"{product} as {role} ({frame.height} rows)")
    for name in frame.columns:
        table.add_column(name)
    for row in frame.iter_rows():
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)


@app.command("synth")
def synth(
    product: Annotated[str, typer.Argument(help="domain/product to imitate.")],
    rows: Annotated[int | None, typer.Option(help="Rows to generate (default: as many).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    write: Annotated[bool, typer.Option(help="Write <domain>/<product>_synthetic.")] = True,
) -> None:
    """Generate privacy-safe synthetic rows shaped like a product (Gaussian copula)."""
    from dagster_project.lake.storage import Lake
    from dagster_project.ml.synthetic import synthesize, synthetic_contract

    contract = _product_contract(product)
    lake = Lake()
    if not lake.exists(product):
        raise typer.BadParameter(f"{product} has not been built yet")
    result = synthesize(contract, lake.read(product), rows, seed)
    table = Table(title=f"Synthetic {product}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.metrics.items():
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        table.add_row(key, shown)
    console.print(table)
    if write:
        target = synthetic_contract(contract)
        written = lake.write(target, result.frame)
        console.print(f"Wrote {written.rows_written:,} rows to {target.key} (v{written.version}).")
