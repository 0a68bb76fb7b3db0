"""Benchmark: `mesh ask` execution accuracy and latency against running the gold SQL.

    python bench/ask.py [--days D] [--scale N] [--home DIR] [--json FILE]

Setup (not timed): the simulator lands D days of orders (about N order lines) from
2025-01-01 and `dagster_project.app.refresh.refresh` builds the products questions read
(sales, inventory and customers) on a fresh MESH_HOME; `--home` reuses a built one. The
store, city and category names in the questions are the simulator's at the default 60
days and 5,000 lines: other scales draw other stores.

Each question of bench/ask_questions.yaml is asked offline as the `analyst` role (parse,
compile, guard, governed masked reads, DuckDB, narrative, one audit append) and its rows
are compared with the gold SQL's, run directly over the products' Delta tables
(`semantic_sql.connect`: register the tables, run the SQL). Rows match as multisets,
numbers equal up to a relative 1e-6 (summation order); an unanswerable question
(`gold: null`) is right when the answer says it cannot answer. Latency is per question
(the median over `--repeat` runs); `ratio` = ask p50 / gold p50 and the target is <= 1.2x + 20 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
QUESTIONS = ROOT / "bench" / "ask_questions.yaml"
START = date(2025, 1, 1)
PRODUCTS = {
    "sales/stores",
    "sales/order_lines",
    "sales/daily_sales",
    "inventory/products",
    "inventory/stock_levels",
    "customers/customer_profiles",
    "customers/customer_segments",
}


def load_questions(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text())["questions"]


def build_mesh(home: Path, days: int, scale: int) -> None:
    """Simulate and refresh the products questions read, in `home` (MESH_HOME must be it)."""
    import dagster as dg

    from dagster_project.app.refresh import refresh
    from dagster_project.checks.quality.companions import discover_contracts
    from dagster_project.core.settings import MeshSettings
    from dagster_project.core.workspace import load_definitions, mesh_assets
    from demo.simulator import simulate

    settings = MeshSettings(home=str(home))
    simulate(settings, days=days, scale=scale, start=START)
    assets = [
        a
        for a in mesh_assets(load_definitions())
        if {k.to_user_string() for k in a.keys} <= PRODUCTS
    ]
    report = refresh(
        assets, discover_contracts(), settings=settings, instance=dg.DagsterInstance.ephemeral()
    )
    if not report.success:
        raise RuntimeError("the refresh of the eval mesh failed")


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not (isinstance(v, float | int) or hasattr(v, "__float__")):
        return None
    return float(v)


def _sort_key(row: tuple | list) -> str:
    return repr([round(_number(v), 2) if _number(v) is not None else v for v in row])


def same_rows(got: list, gold: list) -> bool:
    """Equal as multisets of rows; numbers equal up to summation-order noise."""
    if len(got) != len(gold):
        return False
    for a, b in zip(sorted(got, key=_sort_key), sorted(gold, key=_sort_key), strict=True):
        if len(a) != len(b):
            return False
        for x, y in zip(a, b, strict=True):
            nx, ny = _number(x), _number(y)
            if nx is not None and ny is not None:
                if not math.isclose(nx, ny, rel_tol=1e-6, abs_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True


def run_gold(lake: Any, sql: str) -> list[tuple]:
    from dagster_project.ask.guard import guard_sql
    from dagster_project.ask.semantic_sql import connect

    con = connect(lake, guard_sql(sql, PRODUCTS))
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def _timed(fn, repeat: int) -> tuple[Any, float]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return result, statistics.median(times)


def evaluate(asker: Any, lake: Any, questions: list[dict[str, Any]], repeat: int = 1) -> dict:
    """Ask every question, compare with its gold SQL, time both."""
    asker.ask(questions[0]["question"])  # warm-up: the parser reads dimension values once
    results = []
    for q in questions:
        try:
            answer, ms = _timed(lambda q=q: asker.ask(q["question"]), repeat)
            error = None
        except Exception as exc:  # a refusal or crash is a failure of this question
            answer, ms, error = None, 0.0, f"{type(exc).__name__}: {exc}"
        if q.get("gold") is None:
            ok = answer is not None and not answer.answered
            gold_ms = None
        else:
            gold, gold_ms = _timed(lambda q=q: run_gold(lake, q["gold"]), repeat)
            ok = answer is not None and answer.answered and (same_rows(answer.rows, gold))
        results.append(
            {**q, "ok": ok, "ms": ms, "gold_ms": gold_ms, "error": error, "answer": answer}
        )
    return summarize(results)


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    timed = [r for r in results if r["gold_ms"] is not None and r["error"] is None]
    p50 = statistics.median(r["ms"] for r in timed)
    gold_p50 = statistics.median(r["gold_ms"] for r in timed)
    failures = Counter(r["kind"] for r in results if not r["ok"])
    return {
        "accuracy": round(sum(r["ok"] for r in results) / len(results), 4),
        "questions": len(results),
        "correct": sum(r["ok"] for r in results),
        "p50_ms": round(p50, 2),
        "gold_p50_ms": round(gold_p50, 2),
        "ratio": round(p50 / gold_p50, 2),
        "latency_target_met": p50 <= 1.2 * gold_p50 + 20,
        "failures_by_kind": dict(sorted(failures.items())),
        "failed": [r["question"] for r in results if not r["ok"]],
        "results": results,
    }


def print_report(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))
    kinds = Counter(r["kind"] for r in summary["results"])
    table = Table(title="mesh ask: execution accuracy by kind of question")
    for name in ("kind", "questions", "correct", "accuracy"):
        table.add_column(name, justify="right")
    for kind, n in sorted(kinds.items()):
        wrong = summary["failures_by_kind"].get(kind, 0)
        table.add_row(kind, str(n), str(n - wrong), f"{(n - wrong) / n:.2f}")
    table.add_row(
        "all",
        str(summary["questions"]),
        str(summary["correct"]),
        f"{summary['accuracy']:.2f}",
        style="bold",
    )
    console.print(table)
    latency = Table(title="latency per question (p50)")
    for name in ("ask_ms", "gold_sql_ms", "ratio", "target <= 1.2x + 20 ms"):
        latency.add_column(name, justify="right")
    style = "green" if summary["latency_target_met"] else "red"
    latency.add_row(
        f"{summary['p50_ms']:.1f}",
        f"{summary['gold_p50_ms']:.1f}",
        f"{summary['ratio']:.2f}",
        f"[{style}]{summary['latency_target_met']}[/{style}]",
    )
    console.print(latency)
    for r in summary["results"]:
        if not r["ok"]:
            query = r["answer"].semantic_query if r["answer"] else r["error"]
            console.print(f"[red]x[/red] {r['kind']}: {r['question']} -> {query}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--scale", type=int, default=5_000, help="order lines to simulate")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--home", type=Path, help="a MESH_HOME already built by this bench")
    parser.add_argument("--json", type=Path, help="write one flat JSON object here")
    args = parser.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="ask-bench-"))
    os.environ["MESH_HOME"] = str(home)
    if args.home is None:
        build_mesh(home, args.days, args.scale)
    from dagster_project.ask import Asker
    from dagster_project.lake.storage import Lake

    lake = Lake()
    summary = evaluate(Asker(lake, provider="offline"), lake, load_questions(), args.repeat)
    print_report(summary)
    if args.json:
        flat = {k: v for k, v in summary.items() if k not in {"results", "failures_by_kind"}}
        flat["failed"] = "; ".join(flat["failed"])
        flat.update({f"failures_{k}": v for k, v in summary["failures_by_kind"].items()})
        args.json.write_text(json.dumps(flat, indent=2) + "\n")


if __name__ == "__main__":
    main()
