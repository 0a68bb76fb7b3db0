"""Benchmark: the mesh's Gaussian copula against SDV's GaussianCopulaSynthesizer.

    python bench/synth.py [--rows N] [--seed S] [--json FILE]

Real data: the seeded simulator's `customers/customer_profiles` (categories, dates,
booleans and personal data) and `sales/order_lines` (numbers with strong pairwise
dependencies), N rows each at most. Each side fits on the same rows and samples as
many; `seconds` is fit + sample (best of 3 for the mesh, one run for SDV, which is
slower by far). SDV runs in its own virtualenv (it needs torch; the CPU build on this
machine's disk is used) created once under bench/results/venvs/.

Both synthetic sets are scored by SDMetrics' own QualityReport (in SDV's venv) over
the columns the mesh models: not keys (the mesh draws fresh ones) and not personal
data (generated anew by both). `exact_copies` counts synthetic rows identical to a
real row on every column. Targets: quality >= SDV's, >= 10x faster, 0 copies.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.isolated_venv import venv_python  # noqa: E402

SDV_PINS = ["torch==2.13.0", "sdv==2.0.0", "pyarrow==25.0.1"]
TABLES = ("customers/customer_profiles", "sales/order_lines")

SDV_SCRIPT = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from sdv.metadata import Metadata
from sdv.single_table import GaussianCopulaSynthesizer
from sdmetrics.reports.single_table import QualityReport

job = json.loads(open(sys.argv[1]).read())
out = {}
for name, spec in job.items():
    real = pd.read_parquet(spec["real"])
    ours = pd.read_parquet(spec["ours"])
    for frame in (real, ours):
        for column in spec["dates"]:
            frame[column] = pd.to_datetime(frame[column])
    metadata = Metadata.detect_from_dataframes({name: real})
    started = time.perf_counter()
    synthesizer = GaussianCopulaSynthesizer(metadata)
    synthesizer.fit({name: real})  # SDV 2 takes {table name: frame}
    sdv = synthesizer.sample(num_rows=len(real))
    sdv = sdv[name] if isinstance(sdv, dict) else sdv
    seconds = time.perf_counter() - started
    sdv.to_parquet(spec["sdv"])
    columns = spec["columns"]
    # Score the modelled columns with the types the contract gives them.
    table_meta = {"columns": {c: {"sdtype": spec["sdtypes"][c]} for c in columns}}
    scores = {}
    for label, synthetic in (("ours", ours), ("sdv", sdv)):
        report = QualityReport()
        report.generate(real[columns], synthetic[columns], table_meta, verbose=False)
        props = report.get_properties().set_index("Property")["Score"].to_dict()
        scores[label] = {"quality": report.get_score(), **props}
    out[name] = {"sdv_seconds": seconds, "scores": scores}
print(json.dumps(out))
"""


def real_frames(rows: int, seed: int, home: Path) -> dict[str, pl.DataFrame]:
    from dagster_project.checks.quality.companions import discover_contracts
    from dagster_project.core.settings import MeshSettings
    from dagster_project.lake.landing import load_landing
    from demo.simulator import simulate

    settings = MeshSettings(home=str(home), landing_min_age=0)  # complete files: no waiting
    simulate(settings, days=14, scale=max(rows, 2000), seed=seed)
    contracts = {c.key: c for c in discover_contracts()}
    frames = {}
    for key in TABLES:
        frame = load_landing(settings, contracts[key], None).frame
        frames[key] = frame.sample(min(rows, frame.height), seed=seed)
    return frames


def sdtype(contract, column: str) -> str:
    logical = contract.column(column).logical_type
    return {
        "integer": "numerical",
        "number": "numerical",
        "date": "datetime",
        "timestamp": "datetime",
        "boolean": "boolean",
    }.get(logical, "categorical")


def run_mesh(contract, real: pl.DataFrame, seed: int) -> tuple[pl.DataFrame, float, dict]:
    from dagster_project.ml.synthetic import GaussianCopula, exact_copies, quality_report

    best, frame, model = float("inf"), None, None
    for attempt in range(3):
        started = time.perf_counter()
        model = GaussianCopula(contract, seed=seed + attempt).fit(real)
        frame = model.sample(real.height)
        best = min(best, time.perf_counter() - started)
    own = quality_report(real, frame, contract, model.modelled)
    return frame, best, {"columns": model.modelled, "copies": exact_copies(real, frame), **own}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    console = Console()
    from dagster_project.checks.quality.companions import discover_contracts
    from dagster_project.ml.synthetic import exact_copies

    contracts = {c.key: c for c in discover_contracts()}
    with console.status("Preparing SDV's virtualenv (first run installs it)"):
        python = venv_python(ROOT / "bench" / "results" / "venvs", SDV_PINS, timeout=1800)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        frames = real_frames(args.rows, args.seed, work / "mesh")
        job, mesh = {}, {}
        for key, real in frames.items():
            name = key.split("/")[1]
            frame, seconds, own = run_mesh(contracts[key], real, args.seed)
            mesh[name] = {"seconds": seconds, **own}
            dates = [c for c, t in real.schema.items() if t == pl.Date]
            real.write_parquet(work / f"{name}.real.parquet")
            frame.write_parquet(work / f"{name}.ours.parquet")
            job[name] = {
                "real": str(work / f"{name}.real.parquet"),
                "ours": str(work / f"{name}.ours.parquet"),
                "sdv": str(work / f"{name}.sdv.parquet"),
                "columns": own["columns"],
                "dates": dates,
                "sdtypes": {c: sdtype(contracts[key], c) for c in own["columns"]},
            }
        (work / "job.json").write_text(json.dumps(job))
        (work / "sdv_job.py").write_text(SDV_SCRIPT)
        with console.status("SDV: fitting and scoring"):
            done = subprocess.run(
                [str(python), str(work / "sdv_job.py"), str(work / "job.json")],
                capture_output=True,
                text=True,
            )
        if done.returncode:
            raise SystemExit(f"SDV failed:\n{done.stderr[-3000:]}")
        sdv = json.loads(done.stdout.strip().splitlines()[-1])
        sdv_copies = {}
        for key, real in frames.items():
            name = key.split("/")[1]
            other = pl.read_parquet(job[name]["sdv"])
            other = other.with_columns(
                pl.col(c).cast(real.schema[c], strict=False)
                for c in other.columns
                if c in real.columns
            )
            sdv_copies[name] = exact_copies(real, other)
    report(console, mesh, sdv, sdv_copies, args)


def report(console: Console, mesh: dict, sdv: dict, sdv_copies: dict, args) -> None:
    table = Table(title=f"Synthetic data: mesh copula vs SDV GaussianCopula ({args.rows:,} rows)")
    for column in ("table", "metric", "mesh", "SDV", "mesh / SDV"):
        table.add_column(column, justify="left" if column in ("table", "metric") else "right")
    result: dict[str, float | int] = {}
    for name in mesh:
        ours, theirs = sdv[name]["scores"]["ours"], sdv[name]["scores"]["sdv"]
        rows = [
            ("quality (SDMetrics)", ours["quality"], theirs["quality"]),
            ("column shapes", ours["Column Shapes"], theirs["Column Shapes"]),
            ("column pair trends", ours["Column Pair Trends"], theirs["Column Pair Trends"]),
            ("seconds (fit + sample)", mesh[name]["seconds"], sdv[name]["sdv_seconds"]),
            ("exact copies", mesh[name]["copies"], sdv_copies[name]),
        ]
        for metric, a, b in rows:
            ratio = f"{a / b:.3f}" if b else "-"
            table.add_row(name, metric, f"{a:.4g}", f"{b:.4g}", ratio)
        table.add_row(name, "quality (mesh's own scorer)", f"{mesh[name]['quality']:.4g}", "", "")
        result[f"{name}_quality"] = round(ours["quality"], 4)
        result[f"{name}_sdv_quality"] = round(theirs["quality"], 4)
        result[f"{name}_own_scorer_quality"] = round(mesh[name]["quality"], 4)
    names = list(mesh)
    result["quality"] = round(sum(result[f"{n}_quality"] for n in names) / len(names), 4)
    result["sdv_quality"] = round(sum(result[f"{n}_sdv_quality"] for n in names) / len(names), 4)
    result["seconds"] = round(sum(mesh[n]["seconds"] for n in names), 4)
    result["sdv_seconds"] = round(sum(sdv[n]["sdv_seconds"] for n in names), 4)
    result["speedup"] = round(result["sdv_seconds"] / result["seconds"], 1)
    result["exact_copies"] = sum(mesh[n]["copies"] for n in names)
    result["sdv_exact_copies"] = sum(sdv_copies.values())
    result["rows"] = args.rows
    console.print(table)
    console.print(
        f"quality {result['quality']} vs SDV {result['sdv_quality']}; "
        f"{result['speedup']}x faster; {result['exact_copies']} exact copies"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
