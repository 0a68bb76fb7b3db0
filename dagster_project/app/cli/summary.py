"""What a refresh built: one row per asset (products, shared copies, synthetic products,
models, scenarios alike) with its kind, rows, checks and time, read from the runs' event
logs and the lake."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import dagster as dg
from rich.console import Console
from rich.table import Table

from dagster_project.app.refresh import RefreshReport
from dagster_project.lake.storage import Lake

console = Console()
# Kinds (nearly) every product has: they tell one asset from another no more than
# "python" would; an asset with no other kind shows as "delta".
COMMON_KINDS = {"polars", "delta"}


def asset_summary(
    assets: Sequence[dg.AssetsDefinition],
    report: RefreshReport,
    instance: dg.DagsterInstance,
    lake: Lake,
) -> list[dict]:
    """One record per asset key: kind, rows (the table's, else what the run reported),
    checks passed/total, seconds spent in its step(s), and whether it failed."""
    rows, seconds, checks, failed = _run_facts(report, instance)
    records = []
    for asset in assets:
        for spec in asset.specs:
            key = spec.key.to_user_string()
            info = lake.info(key) if "delta" in spec.kinds else None
            passed, total = checks.get(key, (0, 0))
            records.append(
                {
                    "asset": key,
                    "kind": "+".join(sorted(set(spec.kinds) - COMMON_KINDS)) or "delta",
                    "rows": info.rows if info else rows.get(key),
                    "checks_passed": passed,
                    "checks_total": total,
                    "seconds": round(seconds[key], 1) if key in seconds else None,
                    "failed": key in failed,
                }
            )
    return records


def _run_facts(report: RefreshReport, instance: dg.DagsterInstance):
    """Per asset key: rows reported, seconds in its steps, (checks passed, checks run),
    and the keys whose step failed."""
    rows: dict[str, int] = defaultdict(int)
    seconds: dict[str, float] = defaultdict(float)
    checks: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    failed: set[str] = set()
    for result in report.runs:
        started, ended, step_assets = {}, {}, defaultdict(set)
        for entry in instance.all_logs(result.run_id):
            event = entry.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type_value == "STEP_START":
                started[event.step_key] = entry.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                ended[event.step_key] = entry.timestamp
                if event.event_type_value == "STEP_FAILURE":
                    failed.update(step_assets[event.step_key])
            if event.event_type_value == "ASSET_MATERIALIZATION":
                key = event.asset_key.to_user_string()
                step_assets[event.step_key].add(key)
                count = event.materialization.metadata.get("dagster/row_count")
                if count is not None:  # a model or a scenario reports no rows
                    rows[key] += int(count.value)
        for step, keys in step_assets.items():
            for key in keys:
                seconds[key] += ended.get(step, started.get(step, 0)) - started.get(step, 0)
        for evaluation in result.get_asset_check_evaluations():
            tally = checks[evaluation.asset_key.to_user_string()]
            tally[0] += int(evaluation.passed)
            tally[1] += 1
    return rows, seconds, {k: tuple(v) for k, v in checks.items()}, failed


def print_summary(records: list[dict]) -> None:
    """The `asset_summary` records as one table that fits a screen."""
    title = "Built (rows now in the lake; seconds this refresh took)"
    table = Table(title=title, show_edge=False, pad_edge=False)
    # Asset names never shorten (they are what people copy); on an 80-column terminal
    # the kind gives way, so each asset stays on one line.
    widest = max((len(r["asset"]) + 9 * r["failed"] for r in records), default=5)
    table.add_column("asset", no_wrap=True, min_width=widest)
    table.add_column("kind", no_wrap=True, overflow="ellipsis", max_width=9)
    for name, width in (("rows", 6), ("checks", 5), ("sec", 5)):
        table.add_column(name, justify="right", no_wrap=True, min_width=width)
    for r in records:
        checks = f"{r['checks_passed']}/{r['checks_total']}" if r["checks_total"] else "-"
        if r["checks_passed"] < r["checks_total"]:
            checks = f"[yellow]{checks}[/yellow]"
        name = f"[red]{r['asset']} (failed)[/red]" if r["failed"] else r["asset"]
        table.add_row(
            name,
            r["kind"],
            f"{r['rows']:,}" if r["rows"] is not None else "-",
            checks,
            f"{r['seconds']:.1f}" if r["seconds"] is not None else "-",
        )
    console.print(table)
