"""Benchmark: the inventory demand model against seasonal naive, on the simulator's data.

    python bench/forecast.py [--days D] [--lines-per-day N] [--json FILE]

Setup (not timed): the simulator lands the demo's world — 14 days at N order lines a
day, whose volume fixes the stores and products (as `mesh demo` does) — and continues
at the same daily volume up to D days (as `mesh simulate` does). Daily sales come from
the order lines through the sales domain's own transform.

Timed, after every import: `train` (panel, features, fit on the history before the
backtest window, interval calibration: what `inventory/demand_model` runs) and `score`
(the 14-day forecast of every store and product from the last day of history).

The baseline is measured on the same backtest rows in the same run: seasonal naive,
the same weekday one week earlier (two weeks for days 8-14). The target: the model's
WAPE at least 20% below seasonal naive's (ratio <= 0.8).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dagster_project.core.settings import MeshSettings  # noqa: E402
from dagster_project.ml import interval_model  # noqa: E402,F401  (imports mlflow: not timed)
from demo.simulator import simulate  # noqa: E402
from domains.inventory import forecasting  # noqa: E402
from domains.sales.transforms import daily_sales  # noqa: E402

START = date(2025, 1, 6)
DEMO_DAYS = 14
TARGET_RATIO = 0.8


def simulated(days: int, lines_per_day: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Daily sales and products of `days` simulated days (the demo's world, continued)."""
    with tempfile.TemporaryDirectory(prefix="bench-forecast-") as folder:
        home = MeshSettings(home=folder)
        first = min(days, DEMO_DAYS)
        simulate(home, days=first, scale=first * lines_per_day, start=START)
        if days > DEMO_DAYS:
            simulate(home, days=days - DEMO_DAYS, scale=(days - DEMO_DAYS) * lines_per_day)
        lines = pl.read_parquet(f"{home.landing_uri('sales', 'order_lines')}/*.parquet")
        products = pl.read_parquet(f"{home.landing_uri('inventory', 'products')}/*.parquet")
        return daily_sales(lines.lazy()).collect(), products


def run(days: int, lines_per_day: int) -> dict:
    sales, products = simulated(days, lines_per_day)
    started = time.perf_counter()
    trained = forecasting.train(sales, products)
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    forecast = forecasting.score(trained.model, forecasting.future_rows(sales, products))
    score_s = time.perf_counter() - started
    m = trained.metrics
    return {
        "wape": m["wape"],
        "baseline_wape": m["baseline_wape"],
        "wape_ratio": m["wape"] / m["baseline_wape"],
        "wape_improvement": m["wape_improvement"],
        "target_met": m["wape"] / m["baseline_wape"] <= TARGET_RATIO,
        "mae": m["mae"],
        "baseline_mae": m["baseline_mae"],
        "bias": m["bias"],
        "baseline_bias": m["baseline_bias"],
        "interval_coverage": m["interval_coverage"],
        "train_s": train_s,
        "score_s": score_s,
        "training_rows": trained.training_rows,
        "backtest_rows": int(m["backtest_rows"]),
        "forecast_rows": forecast.height,
        "held_out_days": trained.held_out,
        "days": days,
        "lines_per_day": lines_per_day,
        "pairs": sales.select("store_id", "product_id").n_unique(),
    }


def report(result: dict) -> None:
    table = Table(
        title=(
            f"Demand model vs seasonal naive: {result['days']} days at "
            f"{result['lines_per_day']:,} order lines a day, {result['pairs']:,} store-product "
            f"pairs, last {result['held_out_days']} days held out"
        )
    )
    for column in ("metric", "model", "seasonal naive", "model / naive"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name in ("wape", "mae"):
        model, naive = result[name], result[f"baseline_{name}"]
        table.add_row(name.upper(), f"{model:.4f}", f"{naive:.4f}", f"{model / naive:.3f}")
    table.add_row("bias", f"{result['bias']:+.4f}", f"{result['baseline_bias']:+.4f}", "")
    table.add_row("80% interval coverage", f"{result['interval_coverage']:.3f}", "", "")
    table.add_row(f"train ({result['training_rows']:,} rows)", f"{result['train_s']:.2f} s", "", "")
    table.add_row(f"score ({result['forecast_rows']:,} rows)", f"{result['score_s']:.2f} s", "", "")
    Console().print(table)
    verdict = "met" if result["target_met"] else "NOT met"
    Console().print(
        f"WAPE {result['wape_improvement']:.1%} below seasonal naive "
        f"(target: at least {1 - TARGET_RATIO:.0%}): {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=84, help="Days of history (default 84).")
    parser.add_argument(
        "--lines-per-day", type=int, default=3_570, help="Order lines a day (the demo's 50k/14)."
    )
    parser.add_argument("--json", type=Path, help="Write the results as one flat JSON object.")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    result = run(args.days, args.lines_per_day)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
