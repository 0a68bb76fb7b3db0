"""Benchmark: the sales products on the local engine (polars/delta-rs) and on Spark.

    python bench/engines.py [--rows N] [--days D] [--master local[*]] [--json FILE]

The simulator lands N order lines over D days once; each engine then builds, on the
same landing files, `sales/order_lines` (landing files → Delta, partition overwrite of
the D days) and `sales/daily_sales` (order lines → daily aggregate → Delta), through the
engines' own read, transform and write paths (dagster_project.lake.storage.Lake and
dagster_project.engines.spark), without Dagster's run overhead and without the contract
checks (the same polars code on both engines). Baseline: the local engine; `ratio` =
spark / local. Peak memory: the largest resident set of this process and its children
(Spark's JVM) sampled every 50 ms. `identical`: both products have the same schema and
the same rows (order-independent row-hash sums, so 10M rows need no sort in memory).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import polars as pl
import psutil
from rich.console import Console
from rich.table import Table

START = date(2025, 1, 1)
PRODUCTS = ("sales/order_lines", "sales/daily_sales")


class PeakMemory:
    """Peak RSS of this process tree while the block runs."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    def _rss(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.05)

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def timed(step: Callable[[], Any]) -> tuple[float, int]:
    with PeakMemory() as memory:
        started = time.perf_counter()
        step()
        seconds = time.perf_counter() - started
    return seconds, memory.peak


def build_local(lake, contracts, window) -> None:
    from dagster_project.lake.landing import load_landing
    from domains.sales.transforms import daily_sales

    lines = load_landing(lake.settings, contracts["order_lines"], window).frame
    lake.write(contracts["order_lines"], lines, window=window)
    daily = daily_sales(lake.scan("sales/order_lines", window=window, column="order_date"))
    lake.write(contracts["daily_sales"], daily.collect(), window=window)


def build_spark(lake, contracts, window, session) -> None:
    from dagster_project.engines.spark import read_delta, write_delta
    from dagster_project.products.spark import read_landing
    from domains.sales.transforms import daily_sales_spark

    lines, _, _ = read_landing(session, lake.settings, contracts["order_lines"], window)
    write_delta(lake, contracts["order_lines"], lines, window=window)
    daily = daily_sales_spark(read_delta(session, lake, "sales/order_lines", window=window))
    write_delta(lake, contracts["daily_sales"], daily, window=window)


def fingerprint(lake, key: str) -> tuple[int, int, dict[str, str]]:
    frame = lake.read(key)
    total = int(frame.hash_rows(seed=7).cast(pl.UInt64).sum()) if frame.height else 0
    return frame.height, total, {k: str(v) for k, v in frame.schema.items()}


def run(rows: int, days: int, master: str) -> dict[str, Any]:
    from dagster_project.core.contracts import load_contracts
    from dagster_project.core.settings import MeshSettings
    from dagster_project.engines.spark_resource import SparkResource
    from dagster_project.lake.storage import DateWindow, Lake
    from demo.simulator import simulate

    contracts = load_contracts(Path(__file__).resolve().parents[1] / "domains/sales/contracts")
    window = DateWindow(START, date.fromordinal(START.toordinal() + days - 1))
    with TemporaryDirectory(prefix="bench-engines-") as folder:
        homes = {name: Path(folder) / name for name in ("local", "spark")}
        started = time.perf_counter()
        simulate(MeshSettings(home=str(homes["local"])), days=days, scale=rows, start=START)
        simulate_s = time.perf_counter() - started
        homes["spark"].mkdir()
        os.symlink(homes["local"] / "landing", homes["spark"] / "landing")  # same files
        # The simulator's files are complete: no need to wait for them to settle.
        lakes = {
            name: Lake(MeshSettings(home=str(home), landing_min_age=0))
            for name, home in homes.items()
        }
        local_s, local_peak = timed(lambda: build_local(lakes["local"], contracts, window))
        spark = SparkResource(
            master=master,
            shuffle_partitions=2 * (os.cpu_count() or 2),
            conf={"spark.driver.memory": "4g"},  # local mode: the executors live in the driver
        )
        started = time.perf_counter()
        session = spark.get_session()
        startup_s = time.perf_counter() - started
        spark_s, spark_peak = timed(lambda: build_spark(lakes["spark"], contracts, window, session))
        files = len(lakes["spark"].table("sales/order_lines").file_uris())
        session.stop()
        prints = {n: [fingerprint(lake, k) for k in PRODUCTS] for n, lake in lakes.items()}
        order_lines_rows = prints["local"][0][0]
    return {
        "rows": order_lines_rows,
        "days": days,
        "master": master,
        "simulate_s": round(simulate_s, 2),
        "local_s": round(local_s, 2),
        "spark_s": round(spark_s, 2),
        "spark_startup_s": round(startup_s, 2),
        "ratio": round(spark_s / local_s, 2),
        "local_peak_mb": round(local_peak / 2**20),
        "spark_peak_mb": round(spark_peak / 2**20),
        "spark_order_lines_files": files,
        "daily_sales_rows": prints["local"][1][0],
        "identical": prints["local"] == prints["spark"],
    }


def report(result: dict[str, Any]) -> None:
    table = Table(title=f"sales/order_lines + sales/daily_sales, {result['rows']:,} order lines")
    for column in ("engine", "seconds", "ratio", "peak MB"):
        table.add_column(column, justify="right" if column != "engine" else "left")
    table.add_row(
        "local (baseline)", f"{result['local_s']:.2f}", "1.00", f"{result['local_peak_mb']:,}"
    )
    table.add_row(
        f"spark {result['master']}",
        f"{result['spark_s']:.2f}",
        f"{result['ratio']:.2f}",
        f"{result['spark_peak_mb']:,}",
    )
    console = Console()
    console.print(table)
    console.print(
        f"identical tables: {result['identical']}; Spark session start "
        f"{result['spark_startup_s']:.1f} s (not counted); simulation {result['simulate_s']:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.rows, args.days, args.master)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
