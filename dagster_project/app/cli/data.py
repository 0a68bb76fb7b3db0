"""`mesh status` (every product's state), `mesh read` (the governed read path) and
`mesh synth` (synthetic data)."""

from __future__ import annotations

import difflib
import getpass
import json
from datetime import UTC, datetime
from typing import Annotated

import dagster as dg
import typer
from rich.console import Console
from rich.table import Table

from dagster_project.access.policy import AccessDenied, GovernedReader
from dagster_project.app.cli.instance import existing_instance, quiet
from dagster_project.checks.families import check_keys
from dagster_project.checks.freshness import judge_freshness
from dagster_project.checks.quality.companion_contracts import discover_contracts
from dagster_project.checks.risks import NOT_JUDGED, execution_status
from dagster_project.core.contracts import Contract
from dagster_project.core.errors import NothingBuilt, UserError
from dagster_project.core.settings import MeshSettings, get_settings
from dagster_project.lake.storage import Lake
from dagster_project.ml.synthetic import synthesize, synthetic_contract

app = typer.Typer()
console = Console()


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every product: rows, Delta version, last update, freshness and check results.

    Exits 3 when nothing is built yet (after printing the records with --json)."""
    quiet()
    settings = get_settings()
    try:  # a broken contract leaves its location out of the table, and fails the command
        discover_contracts(strict=True)
        broken = None
    except UserError as exc:
        broken = exc
    records = product_status(settings, existing_instance(settings))
    built = any(r["rows"] is not None for r in records)
    if as_json:
        typer.echo(json.dumps(records, indent=2))
    elif built:
        print_status(records)
    if broken:
        raise broken
    if not built:
        raise NothingBuilt(settings.home)


def product_status(
    settings: MeshSettings, instance: dg.DagsterInstance | None = None
) -> list[dict]:
    """One record per product of every location: size, version, freshness, checks."""
    lake = Lake(settings)
    now = datetime.now(UTC)
    records = []
    for contract in discover_contracts():
        info = lake.info(contract.key)
        checks = _latest_checks(instance, check_keys(contract)) if instance else {}
        # freshness is the age of the newest event against the SLA, not of the last write
        fresh = judge_freshness(contract, lake, now, info) if info else None
        records.append(
            {
                "product": contract.key,
                "owner": contract.owner,
                "rows": info.rows if info else None,
                "delta_version": info.version if info else None,
                "last_update": info.last_update.isoformat(timespec="seconds") if info else None,
                "newest_event": str(fresh.newest) if fresh and fresh.newest else None,
                "freshness": fresh.label if fresh else "never built",
                "freshness_detail": fresh.describe() if fresh else "never built",
                "checks_passed": sum(1 for v in checks.values() if v == "SUCCEEDED"),
                "checks_failed": sorted(k for k, v in checks.items() if v == "FAILED"),
                "checks_not_judged": sorted(k for k, v in checks.items() if v == NOT_JUDGED),
                "checks_total": len(check_keys(contract)),
            }
        )
    return records


def _latest_checks(instance: dg.DagsterInstance, keys) -> dict[str, str]:
    """Each check's latest status; NOT_JUDGED for a WARN failure with `skipped` metadata
    (too little data to judge, see `checks.quality.checks`)."""
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    return {k.name: execution_status(r) for k, r in latest.items()}


def print_status(records: list[dict]) -> None:
    """The `product_status` records as the table `mesh status` prints."""
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
    ]:  # a check's name is folded onto the next line, never cut to "contrac…"
        table.add_column(col, justify=justify, overflow="fold" if col == "checks" else None)
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


def product_contract(product: str) -> Contract:
    """The contract of `product` (domain/product); a UserError naming the closest ones."""
    found = {c.key: c for c in discover_contracts()}
    if product not in found:
        close = difflib.get_close_matches(product, found, n=3, cutoff=0.5)
        hint = f"Did you mean {' or '.join(close)}? " if close else ""
        raise UserError(f"No product {product!r} in this mesh.", f"{hint}`mesh status` lists them.")
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
    product_contract(product)
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
    contract = product_contract(product)
    lake = Lake()
    if not lake.exists(product):
        raise UserError(f"{product} has not been built yet.", "Run `mesh demo` to build it.")
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
