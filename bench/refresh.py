"""Benchmark: a full mesh refresh against a plain polars + deltalake floor.

    python bench/refresh.py [--rows N] [--days D] [--repeat R] [--scope all|floor]
                            [--checks all|rules] [--json FILE]

Setup (not timed): the simulator lands N order lines over D days, plus stores,
products, stock levels and customer profiles, starting 2025-01-01. Every timed run
gets a fresh MESH_HOME holding a copy of those landing files (copying is not timed).

Each side runs in its own subprocess, so its peak memory (max RSS of that process,
imports included) is not mixed with the other's:

floor  A plain script, no orchestration and no checks: per landed product it reads
       the landing files with polars, casts to the contract's types, keeps the last
       row per primary key where the contract merges, and writes the Delta table with
       `write_deltalake(mode="overwrite", partition_by=[partition column])`. It then
       builds daily_sales and customer_segments from the written order_lines with the
       domains' own transforms, casts and writes them. Frames go to Arrow with
       `CompatLevel.oldest()` like the platform, so both sides write the same bytes.
       It imports neither Dagster nor the platform (contract types come from the parent).
mesh   `dagster_project.app.refresh.refresh` over every asset of every location: all
       products with their contract and policy checks, then the governance catalog
       and scorecard, on a fresh ephemeral Dagster instance, in-process. Importing
       and loading the definitions and contracts, and one throwaway ephemeral instance
       (to warm up Dagster's lazy imports), happen before the clock starts, as do the
       imports of Evidently and scikit-learn that the quality checks load lazily.

bound  The orchestration alone: the same assets (keys, dependencies, daily partitions,
       check specs) with bodies that do nothing but report every check passed, through
       the same `refresh` on a fresh ephemeral instance. `bound_ratio` =
       (bound_s + floor_s) / floor_s is the best ratio any mesh of this shape could reach
       on Dagster: each run, partition materialization and check result is an event the
       instance stores, whatever the data volume.

`--checks rules` keeps the foundation's checks (contract rules and shared policies) and
switches off the machine-learning quality checks (anomaly and drift detection, whose own
budgets bench/quality.py measures) on the mesh and bound sides; the default is all.

`--scope floor` restricts the mesh side to the products the floor builds (still with
every check they carry), which isolates the platform's overhead as the mesh grows.

Runs alternate floor, mesh, bound, floor, mesh, bound, ...; times are the best of `--repeat` runs
(wall clock; process CPU seconds are reported too). `ratio` = mesh_s / floor_s, and
the target is <= 1.5.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START = date(2025, 1, 1)
TARGET = 1.5
DERIVED = ("sales/daily_sales", "customers/customer_segments")
SPEC = "floor_spec.json"
FLOOR_IMPORTS = ("polars", "deltalake", "domains.sales.transforms", "domains.customers.transforms")
QUALITY_IMPORTS = ("evidently", "sklearn.ensemble")


# -- inside a side's subprocess ------------------------------------------------------


def measured(seconds: float, cpu: float, **extra: Any) -> dict[str, Any]:
    """What a side reports: wall and CPU seconds of the timed part, and its peak RSS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"seconds": seconds, "cpu_s": cpu, "peak_mb": peak, **extra}


def write_table(uri: str, frame: Any, spec: dict[str, Any]) -> int:
    """Cast to the contract's types and write one Delta table (full overwrite)."""
    import polars as pl
    from deltalake import write_deltalake

    schema = pl.read_ipc_schema(io.BytesIO(bytes.fromhex(spec["schema"])))
    frame = frame.select(  # optional columns absent from the files are nulls, as in the mesh
        pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in schema.items()
    )
    part = [spec["partition"]] if spec["partition"] else None
    data = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    write_deltalake(uri, data, mode="overwrite", partition_by=part)
    return frame.height


def floor_landing(home: Path, key: str, spec: dict[str, Any]) -> int:
    """Read one product's landing files, keep the last row per key if it merges, write."""
    import polars as pl

    files = sorted(str(p) for p in (home / "landing" / key).glob("*.parquet"))
    frame = pl.read_parquet(files)
    if spec["write_mode"] == "merge":
        frame = frame.unique(subset=spec["primary_key"], keep="last", maintain_order=True)
    return write_table(str(home / "lake" / key), frame, spec)


def floor_derived(home: Path, key: str, spec: dict[str, Any]) -> int:
    """Build a derived product with its domain's transform from the written order lines."""
    import polars as pl

    from domains.customers.transforms import customer_segments
    from domains.sales.transforms import daily_sales

    transform = {DERIVED[0]: daily_sales, DERIVED[1]: customer_segments}[key]
    result = transform(pl.scan_delta(str(home / "lake" / "sales" / "order_lines")))
    frame = result.collect() if isinstance(result, pl.LazyFrame) else result
    return write_table(str(home / "lake" / key), frame, spec)


def run_floor(home: Path) -> dict[str, Any]:
    for module in FLOOR_IMPORTS:  # warm-up
        importlib.import_module(module)
    specs = json.loads((home / SPEC).read_text())
    landed = [k for k in specs if any((home / "landing" / k).glob("*.parquet"))]
    started, cpu = time.perf_counter(), time.process_time()
    rows = {k: floor_landing(home, k, specs[k]) for k in landed if k not in DERIVED}
    rows |= {k: floor_derived(home, k, specs[k]) for k in DERIVED}
    return measured(time.perf_counter() - started, time.process_time() - cpu, table_rows=rows)


def mesh_in_scope(home: Path, scope: str) -> tuple[list[Any], list[Any], Any]:
    """(assets in scope, every contract, settings) of this checkout's workspace, with
    MESH_HOME pointing at `home`; Dagster warmed up. Not timed."""
    os.environ["MESH_HOME"] = str(home)
    from dagster_project.checks.quality.companions import discover_contracts
    from dagster_project.core.settings import MeshSettings
    from dagster_project.core.workspace import load_definitions, mesh_assets

    workspace = ROOT / "workspace.yaml"
    assets = in_scope(mesh_assets(load_definitions(workspace)), home, scope)
    contracts = discover_contracts(path=workspace)
    warm_up_dagster()
    return assets, contracts, MeshSettings(home=str(home))


def run_mesh(home: Path, scope: str) -> dict[str, Any]:
    import dagster as dg

    from dagster_project.app.refresh import refresh

    assets, contracts, settings = mesh_in_scope(home, scope)
    if (ROOT / "dagster_project" / "quality").is_dir():  # a mesh with quality checks
        for module in QUALITY_IMPORTS:  # warm-up: the quality checks import these lazily
            importlib.import_module(module)
    clock = WaveClock()
    started, cpu = time.perf_counter(), time.process_time()
    report = refresh(
        assets,
        contracts,
        settings=settings,
        instance=dg.DagsterInstance.ephemeral(),
        on_wave=clock.start,
        on_done=clock.stop,
    )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    outcome = mesh_outcome(report, contracts, settings)
    return measured(seconds, cpu, waves=clock.waves, **outcome)


def run_bound(home: Path, scope: str) -> dict[str, Any]:
    """The refresh of no-op assets shaped like the mesh's: Dagster's own cost."""
    import dagster as dg

    from dagster_project.app.refresh import refresh

    assets, contracts, settings = mesh_in_scope(home, scope)
    shapes = [no_op_like(a) for a in assets]
    started, cpu = time.perf_counter(), time.process_time()
    report = refresh(
        shapes, contracts, settings=settings, instance=dg.DagsterInstance.ephemeral(), resources={}
    )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    checks = len(report.check_results())
    return measured(seconds, cpu, success=report.success, runs=len(report.runs), checks=checks)


def no_op_like(asset: Any) -> Any:
    """An asset with the same key, dependencies, partitions and checks, doing nothing."""
    import dagster as dg

    specs = list(asset.check_specs)
    deps = sorted(asset.dependency_keys - set(asset.keys), key=lambda k: k.to_user_string())

    @dg.asset(key=asset.key, deps=deps, partitions_def=asset.partitions_def, check_specs=specs)
    def _no_op():  # no annotation: Dagster resolves it in this module, without dg
        results = [dg.AssetCheckResult(check_name=s.name, passed=True) for s in specs]
        return dg.MaterializeResult(check_results=results)

    return _no_op


def without_detectors() -> None:
    """Contracts read as if they asked for no anomaly or drift detection (imputation,
    part of the write, stays); before the definitions load, so no check spec remains."""
    from dagster_project.checks.quality import config

    parse = config._parse
    config._parse = lambda contract: config.QualityConfig(imputable=parse(contract).imputable)


def warm_up_dagster() -> None:
    """Materialize a throwaway checked, partitioned asset on a throwaway instance: Dagster
    imports its storage and execution machinery lazily, once per process."""
    import dagster as dg

    days = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_date="2025-01-03")

    @dg.asset(partitions_def=days, check_specs=[dg.AssetCheckSpec("ok", asset="warm_up")])
    def warm_up():
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(passed=True)])

    range_tags = {
        "dagster/asset_partition_range_start": "2025-01-01",
        "dagster/asset_partition_range_end": "2025-01-02",
    }
    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize([warm_up], instance=instance, tags=range_tags, run_config=QUIET)


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def in_scope(assets: list[Any], home: Path, scope: str) -> list[Any]:
    """All assets, or (scope "floor") only the products the floor builds, with all their checks."""
    if scope == "all":
        return assets
    specs = json.loads((home / SPEC).read_text())
    keys = {k for k in specs if k in DERIVED or any((home / "landing" / k).glob("*.parquet"))}
    return [a for a in assets if {k.to_user_string() for k in a.keys} <= keys]


class WaveClock:
    """Wall seconds of each Dagster run of the refresh (a wave of assets)."""

    def __init__(self) -> None:
        self.waves: list[dict[str, Any]] = []
        self._started = 0.0

    def start(self, names: list[str]) -> None:
        self._started = time.perf_counter()

    def stop(self, names: list[str], result: Any) -> None:
        self.waves.append({"assets": names, "seconds": time.perf_counter() - self._started})


def mesh_outcome(report: Any, contracts: list[Any], settings: Any) -> dict[str, Any]:
    """Whether the refresh succeeded, its checks, and each table's row count."""
    from dagster_project.lake.storage import Lake

    checks = report.check_results()
    failed = [f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if not c.passed]
    lake = Lake(settings)
    infos = {c.key: lake.info(c.key) for c in contracts}
    return {
        "success": report.success,
        "runs": len(report.runs),
        "checks": len(checks),
        "checks_failed": sorted(failed),
        "table_rows": {k: i.rows for k, i in infos.items() if i is not None},
    }


def run_side(side: str, home: Path, out: Path, scope: str, checks: str) -> None:
    warnings.filterwarnings("ignore")  # Dagster's beta/preview notices
    if checks == "rules":
        without_detectors()
    sides = {"floor": run_floor, "mesh": run_mesh, "bound": run_bound}
    result = sides[side](home) if side == "floor" else sides[side](home, scope)
    out.write_text(json.dumps(result))


# -- the parent: setup, runs, summary ------------------------------------------------


def simulate(source: Path, rows: int, days: int) -> float:
    from dagster_project.core.settings import MeshSettings
    from demo.simulator import simulate as land

    started = time.perf_counter()
    land(MeshSettings(home=str(source)), days=days, scale=rows, start=START)
    return time.perf_counter() - started


def floor_specs() -> dict[str, dict[str, Any]]:
    """What the floor needs of each domain contract; types travel as an empty Arrow IPC."""
    import polars as pl

    from dagster_project.checks.quality.companions import discover_contracts

    specs = {}
    for c in discover_contracts(exclude=("governance",), path=ROOT / "workspace.yaml"):
        schema = io.BytesIO()
        pl.DataFrame(schema=c.polars_schema).write_ipc(schema)
        specs[c.key] = {
            "schema": schema.getvalue().hex(),
            "partition": c.partition_column,
            "write_mode": c.write_mode,
            "primary_key": c.primary_key,
        }
    return specs


def spawn(
    side: str, source: Path, work: Path, specs: dict, scope: str, checks: str
) -> dict[str, Any]:
    """Run one side in a fresh interpreter on a fresh copy of the landing files."""
    home = Path(tempfile.mkdtemp(prefix=f"{side}-", dir=work))
    shutil.copytree(source / "landing", home / "landing")
    (home / SPEC).write_text(json.dumps(specs))
    out = home / "result.json"
    command = [sys.executable, __file__, "--side", side, "--home", str(home), "--out", str(out)]
    command += ["--scope", scope, "--checks", checks]
    try:
        subprocess.run(command, check=True, cwd=ROOT)
        return json.loads(out.read_text())
    finally:
        shutil.rmtree(home, ignore_errors=True)


def bench(rows: int, days: int, repeat: int, scope: str, checks: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="meshwork-bench-"))
    try:
        setup_s = simulate(work / "source", rows, days)
        specs = floor_specs()
        runs: dict[str, list[dict[str, Any]]] = {"floor": [], "mesh": [], "bound": []}
        for _ in range(repeat):
            for side in runs:
                runs[side].append(spawn(side, work / "source", work, specs, scope, checks))
        summary = summarize(rows, days, setup_s, runs["floor"], runs["mesh"])
        bound = bound_summary(runs["bound"], summary["floor_s"])
        return {**summary, **bound, "scope": scope, "checks": checks}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run, with every run's time and the highest peak of them all."""
    fastest = min(runs, key=lambda r: r["seconds"])
    times = [r["seconds"] for r in runs]
    peak = max(r["peak_mb"] for r in runs)
    return {**fastest, "times": times, "median_s": statistics.median(times), "peak_mb": peak}


def summarize(rows: int, days: int, setup_s: float, floors: list, meshes: list) -> dict[str, Any]:
    floor, mesh = best(floors), best(meshes)
    failed = sorted({name for m in meshes for name in m["checks_failed"]})
    ratio = mesh["seconds"] / floor["seconds"]
    return {
        "rows": rows,
        "days": days,
        "repeat": len(meshes),
        "floor_s": round(floor["seconds"], 3),
        "mesh_s": round(mesh["seconds"], 3),
        "ratio": round(ratio, 3),
        "floor_rows_per_s": round(rows / floor["seconds"]),
        "mesh_rows_per_s": round(rows / mesh["seconds"]),
        "floor_peak_mb": round(floor["peak_mb"], 1),
        "peak_mb": round(mesh["peak_mb"], 1),
        "floor_cpu_s": round(floor["cpu_s"], 3),
        "mesh_cpu_s": round(mesh["cpu_s"], 3),
        "floor_median_s": round(floor["median_s"], 3),
        "mesh_median_s": round(mesh["median_s"], 3),
        "floor_times_s": [round(t, 3) for t in floor["times"]],
        "mesh_times_s": [round(t, 3) for t in mesh["times"]],
        "setup_s": round(setup_s, 3),
        "mesh_runs": mesh["runs"],
        "mesh_waves": [
            {"assets": w["assets"], "seconds": round(w["seconds"], 3)} for w in mesh["waves"]
        ],
        "mesh_checks": mesh["checks"],
        "mesh_checks_failed": failed,
        "mesh_success": all(m["success"] for m in meshes),
        "same_row_counts": same_rows(floor, mesh),
        "target_met": ratio <= TARGET,
        "cpus": os.cpu_count(),
    }


def bound_summary(bounds: list[dict[str, Any]], floor_s: float) -> dict[str, Any]:
    bound = best(bounds)
    return {
        "bound_s": round(bound["seconds"], 3),
        "bound_ratio": round((bound["seconds"] + floor_s) / floor_s, 3),
        "bound_runs": bound["runs"],
        "bound_checks": bound["checks"],
        "bound_success": all(b["success"] for b in bounds),
    }


def same_rows(floor: dict[str, Any], mesh: dict[str, Any]) -> bool:
    """Every table the floor wrote has as many rows in the mesh's lake."""
    return all(mesh["table_rows"].get(k) == n for k, n in floor["table_rows"].items())


def print_table(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    what = "Full mesh" if summary["scope"] == "all" else "Mesh (the floor's products only)"
    if summary["checks"] == "rules":
        what += ", contract and policy checks only,"
    title = f"{what} refresh vs plain polars + deltalake ({summary['days']} days)"
    table = Table(title=title)
    headers = ("rows", "floor_s", "mesh_s", "ratio", "bound_s", "bound ratio", "mesh rows/s")
    for name in (*headers, "floor peak MB", "mesh peak MB"):
        table.add_column(name, justify="right", no_wrap=True)
    style = "green" if summary["target_met"] else "red"
    table.add_row(
        f"{summary['rows']:,}",
        f"{summary['floor_s']:.2f}",
        f"{summary['mesh_s']:.2f}",
        f"[{style}]{summary['ratio']:.2f}[/{style}]",
        f"{summary['bound_s']:.2f}",
        f"{summary['bound_ratio']:.2f}",
        f"{summary['mesh_rows_per_s']:,}",
        f"{summary['floor_peak_mb']:,.0f}",
        f"{summary['peak_mb']:,.0f}",
    )
    console = Console(width=max(Console().width, 110))
    console.print(table)
    console.print(notes(summary))


def waves(runs: list[dict[str, Any]]) -> str:
    """`1.2s sales/stores, ...`: wall seconds and assets of each Dagster run."""
    return " | ".join(f"{w['seconds']:.1f}s {', '.join(w['assets'])}" for w in runs)


def notes(s: dict[str, Any]) -> str:
    failed = ", ".join(s["mesh_checks_failed"]) or "none"
    return (
        f"best of {s['repeat']} (medians: floor {s['floor_median_s']:.2f}s, mesh"
        f" {s['mesh_median_s']:.2f}s); CPU s: floor {s['floor_cpu_s']:.1f}, mesh"
        f" {s['mesh_cpu_s']:.1f}; {s['cpus']} CPUs; target ratio <= {TARGET}\n"
        f"mesh: {s['mesh_runs']} runs, {s['mesh_checks']} checks, failed: {failed};"
        f" same row counts as the floor: {s['same_row_counts']}\n"
        f"mesh runs (fastest refresh): {waves(s['mesh_waves'])}\n"
        f"bound: the same {s['bound_runs']} runs and {s['bound_checks']} checks with no-op bodies"
        " (Dagster alone); bound ratio = (bound_s + floor_s) / floor_s, the best any mesh of"
        " this shape can reach\n"
        f"not timed: simulation ({s['setup_s']:.1f}s), copying landing files, imports,"
        " loading the definitions and contracts; peaks are each side's max RSS"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the full mesh refresh.")
    parser.add_argument("--rows", type=int, default=1_000_000, help="order lines to simulate")
    parser.add_argument("--days", type=int, default=30, help="days the order lines span")
    parser.add_argument("--repeat", type=int, default=1, help="runs per side (best is kept)")
    parser.add_argument("--json", type=Path, help="write the results as one JSON object")
    parser.add_argument(
        "--scope",
        choices=("all", "floor"),
        default="all",
        help="mesh side: every asset (default) or only the products the floor builds",
    )
    parser.add_argument(
        "--checks",
        choices=("all", "rules"),
        default="all",
        help="every check (default) or only contract rules and policies (no ML detectors)",
    )
    parser.add_argument("--side", choices=("floor", "mesh", "bound"), help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))  # this checkout's mesh, whatever is installed
    if args.side:
        run_side(args.side, args.home, args.out, args.scope, args.checks)
        return
    summary = bench(args.rows, args.days, max(args.repeat, 1), args.scope, args.checks)
    print_table(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
