"""Benchmark: the quality checks against their baselines, on simulated ground truth.

    python bench/quality.py [--rows N] [--drift-rows M] [--json FILE]

anomalies   N order lines over 30 days, 1% injected anomalies (spikes, derivation errors,
            contextual prices). The platform's detector (`quality.anomaly.score_rows`:
            fit on the rows, choose without labels, score, explain) against a plain
            IsolationForest on the raw numeric columns. Targets: ROC-AUC >= 0.95,
            average precision >= 0.7, fit + score + explanations <= 10 s.
imputation  N order lines with 1% of unit_price blanked by the simulator. The platform's
            gradient-boosting imputation against filling with the median. Targets:
            RMSE / std <= 0.3 on the masked values, >= 100k rows/s (rows of the batch
            per second of training and predicting).
drift       Three simulated days of about M order lines each: day 1 is the reference,
            day 2 is unchanged, day 3 has injected drift (unit prices of Electronics
            doubled, online share 22% -> 80%). The platform's drift check
            (`quality.drift.compare`: stratified samples, Evidently, root cause, HTML
            report) against Evidently's own run on all rows, same tests and thresholds.
            Targets: check time <= 10% of the full run, same drifted-column verdicts,
            no drifted column on the unchanged day.

Simulation is setup and is not timed. Everything runs in this process on the machine's
cores (the platform pins gradient boosting to one thread; see `quality.imputation`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dagster_project.checks.quality.config import quality_config  # noqa: E402
from dagster_project.core.contracts import load_contract  # noqa: E402
from dagster_project.core.settings import MeshSettings  # noqa: E402
from dagster_project.lake.storage import Lake  # noqa: E402
from demo.simulator import AnomalySpec, DriftSpec, MissingSpec, simulate  # noqa: E402

START = date(2025, 1, 6)  # a Monday: the three drift days are Mon, Tue, Wed
ORDER_LINES = ROOT / "domains" / "sales" / "contracts" / "order_lines.odcs.yaml"
DRIFT = DriftSpec(
    start=START + timedelta(days=2),
    price_shift_category="Electronics",
    price_shift_factor=2.0,
    online_share=0.8,
)
TARGETS = {"auc": 0.95, "ap": 0.7, "anomaly_s": 10.0, "nrmse": 0.3, "rows_per_s": 100_000}


def _landed(home: Path, key: str) -> pl.DataFrame:
    return pl.read_parquet(sorted(str(p) for p in (home / "landing" / key).glob("*.parquet")))


def _truth(home: Path, kind: str) -> pl.DataFrame:
    folder = home / "registry" / "simulator" / "ground_truth" / kind
    return pl.read_parquet(sorted(str(p) for p in folder.glob("*.parquet")))


# -- anomalies ---------------------------------------------------------------------------


def bench_anomalies(work: Path, rows: int) -> dict[str, Any]:
    from dagster_project.checks.quality.anomaly import score_rows
    from dagster_project.checks.quality.detectors import (
        IsolationForestDetector,
        average_precision,
        roc_auc,
    )

    home = work / "anomalies"
    simulate(
        MeshSettings(home=str(home)),
        days=30,
        scale=rows,
        start=START,
        anomalies=AnomalySpec(rate=0.01),
    )
    frame = _landed(home, "sales/order_lines")
    truth = _truth(home, "anomalies").select("order_id", "line_number", "kind")
    labels = (
        frame.select("order_id", "line_number")
        .join(truth, on=["order_id", "line_number"], how="left", maintain_order="left")["kind"]
        .is_not_null()
        .to_numpy()
    )
    contract = load_contract(ORDER_LINES)
    config = quality_config(contract).anomaly
    lake = Lake(MeshSettings(home=str(home)))
    import sklearn.ensemble  # noqa: F401  (import time is not the detector's)

    started = time.perf_counter()
    outcome = score_rows(lake, contract, config, frame, None)
    seconds = time.perf_counter() - started
    scored = outcome.detector.score(frame)[0]  # the same scores, for the ranking metrics
    flagged = scored >= 1.0

    raw = frame.select("quantity", "unit_price", "discount", "net_amount").to_numpy()
    started = time.perf_counter()
    plain = IsolationForestDetector(seed=0).fit(raw)
    plain_scores = plain.score(raw)
    plain_s = time.perf_counter() - started
    return {
        "anomaly_rows": frame.height,
        "anomaly_injected": int(labels.sum()),
        "anomaly_detector": outcome.detector.detector.name,
        "anomaly_auc": round(roc_auc(labels, scored), 4),
        "anomaly_ap": round(average_precision(labels, scored), 4),
        "anomaly_flagged": int(flagged.sum()),
        "anomaly_precision": round(float((labels & flagged).sum() / max(flagged.sum(), 1)), 4),
        "anomaly_recall": round(float((labels & flagged).sum() / max(labels.sum(), 1)), 4),
        "anomaly_s": round(seconds, 3),
        "anomaly_fit_s": outcome.seconds["fit_s"],
        "anomaly_score_s": outcome.seconds["score_s"],
        "anomaly_explain_s": outcome.seconds["explain_s"],
        "baseline_iforest_auc": round(roc_auc(labels, plain_scores), 4),
        "baseline_iforest_ap": round(average_precision(labels, plain_scores), 4),
        "baseline_iforest_s": round(plain_s, 3),
        "anomaly_example": outcome.flagged["reason"][0] if outcome.count else "",
    }


# -- imputation --------------------------------------------------------------------------


def bench_imputation(work: Path, rows: int) -> dict[str, Any]:
    from dagster_project.checks.quality.checks import impute_missing

    home = work / "imputation"
    simulate(
        MeshSettings(home=str(home)),
        days=30,
        scale=rows,
        start=START,
        missing=MissingSpec(rate=0.01, columns=("unit_price",)),
    )
    frame = _landed(home, "sales/order_lines")
    truth = _truth(home, "missing").select("order_id", "line_number", "value")
    contract = load_contract(ORDER_LINES)
    import sklearn.ensemble  # noqa: F401  (import time is not the model's)

    started = time.perf_counter()
    filled, done = impute_missing(contract, frame)
    seconds = time.perf_counter() - started
    spread = frame["unit_price"].drop_nulls().std()
    check = truth.join(
        filled.select("order_id", "line_number", "unit_price", "unit_price_imputed"),
        on=["order_id", "line_number"],
    )
    error = check["unit_price"] - check["value"]
    nrmse = float(np.sqrt((error**2).mean())) / spread

    started = time.perf_counter()
    median = frame["unit_price"].median()
    frame.with_columns(pl.col("unit_price").fill_null(median))
    median_s = time.perf_counter() - started
    median_nrmse = float(np.sqrt(((check["value"] - median) ** 2).mean())) / spread
    return {
        "imputation_rows": frame.height,
        "imputation_masked": truth.height,
        "imputation_flags_match": bool(check["unit_price_imputed"].all())
        and int(filled["unit_price_imputed"].sum()) == truth.height,
        "imputation_nrmse": round(nrmse, 4),
        "imputation_s": round(seconds, 3),
        "imputation_rows_per_s": round(frame.height / seconds),
        "imputation_model": done[0].model if done else "",
        "baseline_median_nrmse": round(median_nrmse, 4),
        "baseline_median_s": round(median_s, 4),
    }


# -- drift -------------------------------------------------------------------------------


def bench_drift(work: Path, rows_per_day: int) -> dict[str, Any]:
    from dagster_project.checks.quality.drift import _evidently, _verdicts, compare, drift_columns

    home = work / "drift"
    settings = MeshSettings(home=str(home))
    simulate(settings, days=3, scale=3 * rows_per_day, start=START, drift=DRIFT)
    truth = json.loads((home / "registry/simulator/ground_truth/drift.json").read_text())
    contract = load_contract(ORDER_LINES)
    config = quality_config(contract).drift
    columns = drift_columns(contract, config)  # as the contract asks (no discount)
    lines = pl.scan_parquet(str(home / "landing/sales/order_lines/*.parquet"))
    products = pl.scan_parquet(str(home / "landing/inventory/products/*.parquet"))
    stores = pl.scan_parquet(str(home / "landing/sales/stores/*.parquet"))
    lines = lines.join(products.select("product_id", "category"), on="product_id", how="left")
    lines = lines.join(stores.select("store_id", "region"), on="store_id", how="left")
    day = [lines.filter(pl.col("order_date") == START + timedelta(days=i)) for i in range(3)]
    segments = ["channel", "region", "category", "store_id"]
    strata = ["channel", "region", "category"]  # few values: known from contract and lookups
    _evidently(*(_tiny(lines, list(columns)) for _ in range(2)), columns, config)  # warm-up

    started = time.perf_counter()
    checked = compare(
        day[0],
        day[2],
        columns,
        config,
        segments=segments,
        strata=strata,
        settings=settings,
        report_name=("bench", "order_lines", "drift"),
    )
    drift_s = time.perf_counter() - started
    calm = compare(day[0], day[1], columns, config, segments=segments, strata=strata)

    reference = day[0].select(list(columns)).collect()
    current = day[2].select(list(columns)).collect()
    started = time.perf_counter()
    full = _verdicts(_evidently(reference, current, columns, config), columns)
    full_s = time.perf_counter() - started
    ours = {c.column for c in checked.drifted}
    theirs = {c.column for c in full if c.drifted}
    return {
        "drift_rows_reference": checked.reference_rows,
        "drift_rows_current": checked.current_rows,
        "drift_sample_rows": checked.sample_rows[0],
        "drift_s": round(drift_s, 3),
        "evidently_full_s": round(full_s, 3),
        "drift_ratio": round(drift_s / full_s, 4),
        "drift_verdicts_match": ours == theirs,
        "drifted_columns": ", ".join(sorted(ours)),
        "evidently_full_drifted_columns": ", ".join(sorted(theirs)),
        "drift_truth_columns": ", ".join(truth["columns"]),
        "drift_scores": json.dumps({c.column: round(c.score, 4) for c in checked.columns}),
        "evidently_full_scores": json.dumps({c.column: round(c.score, 4) for c in full}),
        "drift_false_alarms": len(calm.drifted),
        "drift_root_cause": " | ".join(c.sentence for c in checked.causes),
    }


def _tiny(frame: pl.LazyFrame, columns: list[str]) -> pl.DataFrame:
    return frame.select(columns).head(2000).collect()


# -- report ------------------------------------------------------------------------------


def print_table(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def ok(met: bool) -> str:
        return "[green]yes[/green]" if met else "[red]no[/red]"

    table = Table(title="Quality checks against their baselines")
    for name in ("measure", "platform", "baseline", "target", "met"):
        table.add_column(name, justify="left" if name == "measure" else "right")
    rows = [
        (
            f"anomaly ROC-AUC ({r['anomaly_rows']:,} lines, 1%)",
            r["anomaly_auc"],
            f"{r['baseline_iforest_auc']} (plain IsolationForest)",
            ">= 0.95",
            r["anomaly_auc"] >= TARGETS["auc"],
        ),
        (
            "anomaly average precision",
            r["anomaly_ap"],
            r["baseline_iforest_ap"],
            ">= 0.7",
            r["anomaly_ap"] >= TARGETS["ap"],
        ),
        (
            "anomaly fit + score + explain (s)",
            r["anomaly_s"],
            r["baseline_iforest_s"],
            "<= 10",
            r["anomaly_s"] <= TARGETS["anomaly_s"],
        ),
        (
            "imputation RMSE / std",
            r["imputation_nrmse"],
            f"{r['baseline_median_nrmse']} (median fill)",
            "<= 0.3",
            r["imputation_nrmse"] <= TARGETS["nrmse"],
        ),
        (
            "imputation rows/s",
            f"{r['imputation_rows_per_s']:,}",
            "-",
            ">= 100,000",
            r["imputation_rows_per_s"] >= TARGETS["rows_per_s"],
        ),
        (
            f"drift check (s), {r['drift_rows_reference']:,} vs {r['drift_rows_current']:,}",
            r["drift_s"],
            f"{r['evidently_full_s']} (Evidently, all rows)",
            f"<= 10% ({r['drift_ratio']:.1%})",
            r["drift_ratio"] <= 0.1,
        ),
        (
            "drifted columns",
            r["drifted_columns"],
            r["evidently_full_drifted_columns"],
            "same",
            r["drift_verdicts_match"],
        ),
        (
            "drifted columns on an unchanged day",
            r["drift_false_alarms"],
            "-",
            "0",
            r["drift_false_alarms"] == 0,
        ),
    ]
    for measure, mine, base, target, met in rows:
        table.add_row(measure, str(mine), str(base), target, ok(met))
    console = Console()
    console.print(table)
    console.print(f"detector chosen: {r['anomaly_detector']}; e.g. {r['anomaly_example']}")
    console.print(f"drift root cause: {r['drift_root_cause']}")
    console.print(
        f"injected drift columns (ground truth): {r['drift_truth_columns']}; "
        f"cores: {os.cpu_count()}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows",
        type=int,
        default=1_000_000,
        help="order lines for the anomaly and imputation benchmarks",
    )
    parser.add_argument(
        "--drift-rows",
        type=int,
        default=10_000_000,
        help="order lines per side of the drift comparison",
    )
    parser.add_argument("--json", type=Path, help="write the results as one JSON object")
    parser.add_argument("--keep", action="store_true", help="keep the temporary homes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    warnings.filterwarnings("ignore")
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="meshwork-quality-"))
    try:
        results = {"rows": args.rows, "drift_rows": args.drift_rows, "cpus": os.cpu_count()}
        results |= bench_anomalies(work, args.rows)
        results |= bench_imputation(work, args.rows)
        results |= bench_drift(work, args.drift_rows)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["targets_met"] = all(
        [
            results["anomaly_auc"] >= TARGETS["auc"],
            results["anomaly_ap"] >= TARGETS["ap"],
            results["anomaly_s"] <= TARGETS["anomaly_s"],
            results["imputation_nrmse"] <= TARGETS["nrmse"],
            results["imputation_rows_per_s"] >= TARGETS["rows_per_s"],
            results["drift_ratio"] <= 0.1,
            results["drift_verdicts_match"],
            results["drift_false_alarms"] == 0,
        ]
    )
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
