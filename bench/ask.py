"""Benchmark: `mesh ask` exact, wrong and abstained answers against gold SQL, and latency.

    python bench/ask.py [--days D] [--scale N] [--home DIR] [--questions FILE ...]
                        [--mesh retail|dragracer] [--json FILE]

Setup (not timed), on a fresh MESH_HOME (`--home` reuses one this bench built), one of
two meshes, the one the question files' gold SQL reads (or `--mesh`):
- `retail`: the simulator lands D days of orders (about N order lines) from 2025-01-01
  and `dagster_project.app.refresh.refresh` builds the products questions read (sales,
  inventory and customers). The store, city and category names in the questions are the
  simulator's at the default 60 days and 5,000 lines: other scales draw other stores.
- `dragracer`: the real-data domain's seasons S01-S03 landed and the dragracer and
  governance locations refreshed, exactly as tests/domains/dragracer/conftest.py does
  (e.g. `--questions bench/ask_questions_fresh_dragracer.yaml`).

Each question file (default: bench/ask_questions_dev.yaml and the held-apart
bench/ask_questions_test.yaml; any other file, e.g. a new domain's, with `--questions`)
is reported on its own. Each question is asked offline as the `analyst` role (parse,
compile, guard, governed masked reads, DuckDB, narrative, one audit append) and graded:
`exact` when it is answered and its rows equal the gold SQL's, run directly over the
products' Delta tables (multisets, numbers equal up to a relative 1e-6, a midnight
timestamp equal to its date); `wrong` when it is answered with other rows, or answered at
all when it has `expect: unanswerable` / `expect: clarify` (or `gold: null`); `abstain`
when an answerable question gets `clarify` or `unanswerable`. Rates are per kind and per
file. Latency is per question (the median over `--repeat` runs); `ratio` = ask p50 / gold
p50 and the target is <= 1.2x + 20 ms.
The misses of the test half are counted, never printed: it is not tuned on.
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
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
# This repo's packages, after a workspace on PYTHONPATH (another mesh's `domains`).
sys.path.insert(
    1 + len([p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]), str(ROOT)
)
QUESTIONS = ROOT / "bench" / "ask_questions.yaml"  # the first set (written with the parser)
HALVES = [ROOT / "bench" / "ask_questions_dev.yaml", ROOT / "bench" / "ask_questions_test.yaml"]
FRESH = ROOT / "bench" / "ask_questions_fresh.yaml"  # session 4's, split into two halves
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
RETAIL_DOMAINS = {"sales", "inventory", "customers"}


def load_questions(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text())["questions"]


def build_mesh(home: Path, days: int = 60, scale: int = 5_000) -> None:
    """Simulate and refresh the products questions read, in `home` (MESH_HOME must be it)."""
    import dagster as dg

    from dagster_project.app.refresh import refresh
    from dagster_project.checks.quality.companions import discover_contracts
    from dagster_project.core.settings import MeshSettings
    from dagster_project.core.workspace import load_definitions, mesh_assets
    from demo.simulator import simulate

    # The bench lands every file itself and at once: none is still being written.
    os.environ["MESH_LANDING_MIN_AGE_SECONDS"] = "0"
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


def build_dragracer(home: Path, days: int = 0, scale: int = 0) -> None:
    """The dragracer home of tests/domains/dragracer (its seasons, its locations), in
    `home` (MESH_HOME must be it); `days` and `scale` are the simulator's, unused."""
    from tests.domains.dragracer.conftest import build_real_mesh

    os.environ["MESH_LANDING_MIN_AGE_SECONDS"] = "0"  # as tests/conftest.py sets it
    if not build_real_mesh(home).report.success:
        raise RuntimeError("the refresh of the dragracer mesh failed")


def dragracer_products() -> set[str]:
    from dagster_project.checks.quality.companions import discover_contracts

    return {c.key for c in discover_contracts() if c.domain == "dragracer"}


# mesh -> (how its home is built, the products its gold SQL may read)
MESHES = {
    "retail": (build_mesh, lambda: PRODUCTS),
    "dragracer": (build_dragracer, dragracer_products),
}


def domain_products(domains: set[str]):
    """The products of a workspace's own domains (one outside this repo, on PYTHONPATH),
    for a home built there: this bench cannot build it."""

    def products() -> set[str]:
        from dagster_project.checks.quality.companions import discover_contracts

        return {c.key for c in discover_contracts() if c.domain in domains}

    return products


def _cannot_build(home: Path, days: int, scale: int) -> None:
    raise SystemExit(f"{home} has no lake: give --home of a mesh built in its own workspace")


def mesh_of(paths: list[Path], home: Path | None = None) -> tuple[Any, Any]:
    """How the home of the mesh the files' gold SQL reads is built, and its products:
    `retail` for the sales, inventory and customers domains, otherwise the one other
    domain they read (one mesh per run); a domain of another workspace needs its `home`."""
    import sqlglot
    from sqlglot import exp

    domains = {
        table.db
        for path in paths
        for q in load_questions(path)
        if q.get("gold")
        for table in sqlglot.parse_one(q["gold"], read="duckdb").find_all(exp.Table)
        if table.db
    }
    meshes = {"retail" if d in RETAIL_DOMAINS else d for d in domains} or {"retail"}
    if len(meshes) == 1 and meshes <= MESHES.keys():
        return MESHES[meshes.pop()]
    if len(meshes) == 1 and home is not None:  # another workspace's domain, built there
        return _cannot_build, domain_products(domains)
    raise SystemExit(
        f"the question files read {sorted(meshes)}: give files of one mesh per run "
        f"({', '.join(MESHES)}), or name it with --mesh, or give --home of a mesh built "
        "in the workspace (on PYTHONPATH) that has its domain"
    )


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not (isinstance(v, float | int) or hasattr(v, "__float__")):
        return None
    return float(v)


def _sort_key(row: tuple | list) -> str:
    return repr([round(_number(v), 2) if _number(v) is not None else v for v in row])


def _day(v: Any) -> Any:
    """A midnight timestamp as its date: a grain's date_trunc equals the gold's date."""
    return v.date() if isinstance(v, datetime) and v.time() == datetime.min.time() else v


def same_rows(got: list, gold: list) -> bool:
    """Equal as multisets of rows; numbers equal up to summation-order noise, a timestamp
    at midnight equal to its date."""
    if len(got) != len(gold):
        return False
    got, gold = ([[_day(v) for v in row] for row in rows] for rows in (got, gold))
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


def run_gold(lake: Any, sql: str, products: set[str] = PRODUCTS) -> list[tuple]:
    from dagster_project.ask.guard import guard_sql
    from dagster_project.ask.semantic_sql import connect

    with connect(lake, guard_sql(sql, products)) as con:
        return con.sql(sql).fetchall()


def _timed(fn, repeat: int) -> tuple[Any, float]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return result, statistics.median(times)


def status_of(answer: Any) -> str:
    """`answered`, `clarify` or `unanswerable` (an error counts as no answer)."""
    if answer is None:
        return "unanswerable"
    return getattr(answer, "status", None) or ("answered" if answer.answered else "unanswerable")


def grade(q: dict[str, Any], answer: Any, gold_rows: list | None) -> str:
    """`exact`, `wrong` or `abstain`. An answer to a question that must not be answered is
    wrong; `clarify` on an `unanswerable` question is exact (it did not answer either)."""
    status = status_of(answer)
    expected = q.get("expect") or ("answered" if q.get("gold") else "unanswerable")
    if expected == "answered":
        if status != "answered":
            return "abstain"
        return "exact" if same_rows(answer.rows, gold_rows or []) else "wrong"
    if status == "answered":
        return "wrong"
    return "exact" if expected == "unanswerable" or status == expected else "abstain"


def evaluate(
    asker: Any,
    lake: Any,
    questions: list[dict[str, Any]],
    repeat: int = 1,
    products: set[str] = PRODUCTS,
) -> dict:
    """Ask every question, compare with its gold SQL (reading only `products`), time both."""
    asker.ask(questions[0]["question"])  # warm-up: the parser reads dimension values once
    results = []
    for q in questions:
        try:
            answer, ms = _timed(lambda q=q: asker.ask(q["question"]), repeat)
            error = None
        except Exception as exc:  # a refusal or crash is a failure of this question
            answer, ms, error = None, 0.0, f"{type(exc).__name__}: {exc}"
        gold, gold_ms = None, None
        if q.get("gold"):
            gold, gold_ms = _timed(lambda q=q: run_gold(lake, q["gold"], products), repeat)
        outcome = grade(q, answer, gold)
        results.append(
            {
                **q,
                "ok": outcome == "exact",
                "outcome": outcome,
                "status": status_of(answer),
                "ms": ms,
                "gold_ms": gold_ms,
                "error": error,
                "answer": answer,
            }
        )
    return summarize(results)


def rates(results: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(results)
    counts = Counter(r["outcome"] for r in results)
    out: dict[str, Any] = {"questions": n}
    for outcome in ("exact", "wrong", "abstain"):
        out[outcome] = counts.get(outcome, 0)
        out[f"{outcome}_rate"] = round(counts.get(outcome, 0) / n, 4) if n else 0.0
    return out


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    timed = [r for r in results if r["gold_ms"] is not None and r["error"] is None]
    p50 = statistics.median(r["ms"] for r in timed) if timed else 0.0
    gold_p50 = statistics.median(r["gold_ms"] for r in timed) if timed else 0.0
    failures = Counter(r["kind"] for r in results if not r["ok"])
    by_kind: dict[str, list] = {}
    for r in results:
        by_kind.setdefault(r["kind"], []).append(r)
    return {
        "accuracy": round(sum(r["ok"] for r in results) / len(results), 4),
        **rates(results),
        "correct": sum(r["ok"] for r in results),
        "p50_ms": round(p50, 2),
        "gold_p50_ms": round(gold_p50, 2),
        "ratio": round(p50 / gold_p50, 2) if gold_p50 else None,
        "latency_target_met": p50 <= 1.2 * gold_p50 + 20,
        "kinds": {k: rates(v) for k, v in sorted(by_kind.items())},
        "failures_by_kind": dict(sorted(failures.items())),
        "failed": [r["question"] for r in results if not r["ok"]],
        "results": results,
    }


def print_report(summary: dict[str, Any], title: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))
    table = Table(title=f"mesh ask{': ' + title if title else ''}: outcomes by kind of question")
    for name in ("kind", "questions", "exact", "wrong", "abstain", "exact %", "wrong %"):
        table.add_column(name, justify="right")

    def row(kind: str, r: dict[str, Any], **style: Any) -> None:
        table.add_row(
            kind,
            *(str(r[k]) for k in ("questions", "exact", "wrong", "abstain")),
            f"{r['exact_rate']:.0%}",
            f"{r['wrong_rate']:.0%}",
            **style,
        )

    for kind, r in summary["kinds"].items():
        row(kind, r)
    row("all", summary, style="bold")
    console.print(table)
    latency = Table(title="latency per question (p50)")
    for name in ("ask_ms", "gold_sql_ms", "ratio", "target <= 1.2x + 20 ms"):
        latency.add_column(name, justify="right")
    style = "green" if summary["latency_target_met"] else "red"
    latency.add_row(
        f"{summary['p50_ms']:.1f}",
        f"{summary['gold_p50_ms']:.1f}",
        f"{summary['ratio']}",
        f"[{style}]{summary['latency_target_met']}[/{style}]",
    )
    console.print(latency)
    for r in summary["results"]:
        if not r["ok"]:
            answer = r["answer"]
            got = (answer.semantic_query, answer.narrative[:100]) if answer else r["error"]
            mark = "[red]WRONG[/red]" if r["outcome"] == "wrong" else "[yellow]abstain[/yellow]"
            console.print(f"{mark} {r['kind']}: {r['question']} -> {r['status']} {got}")


def half_name(path: Path) -> str:
    """`dev` for ask_questions_dev.yaml; the file's stem otherwise."""
    return path.stem.removeprefix("ask_questions_").removeprefix("ask_questions") or path.stem


def halves(paths: list[Path]) -> list[tuple[Path, str, list[dict[str, Any]]]]:
    """Each file as (path, name, questions); a `fresh` file is split by position, the 1st,
    3rd... question in `<name>-dev`, the 2nd, 4th... in `<name>-test` (held apart)."""
    out = []
    for path in paths:
        name, questions = half_name(path), load_questions(path)
        if "fresh" in name:
            out += [(path, f"{name}-dev", questions[0::2]), (path, f"{name}-test", questions[1::2])]
        else:
            out.append((path, name, questions))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--scale", type=int, default=5_000, help="order lines to simulate")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--home", type=Path, help="a MESH_HOME already built by this bench")
    parser.add_argument(
        "--questions",
        type=Path,
        nargs="+",
        default=[*HALVES, FRESH],
        help="question files, each reported on its own (default: dev, test, fresh)",
    )
    parser.add_argument(
        "--mesh",
        choices=sorted(MESHES),
        help="the mesh to build and grade against (default: the one the files' gold SQL reads)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-question misses")
    parser.add_argument("--json", type=Path, help="write the rates per file and kind here")
    args = parser.parse_args(argv)
    build, allowed = MESHES[args.mesh] if args.mesh else mesh_of(args.questions, args.home)
    home = args.home or Path(tempfile.mkdtemp(prefix="ask-bench-"))
    os.environ["MESH_HOME"] = str(home)
    if args.home is None or not (home / "lake").exists():
        build(home, args.days, args.scale)
    from dagster_project.ask import Asker
    from dagster_project.lake.storage import Lake

    lake = Lake()
    asker = Asker(lake, provider="offline")
    report, products = {}, allowed()
    for path, name, questions in halves(args.questions):
        summary = evaluate(asker, lake, questions, args.repeat, products)
        shown = summary
        if args.quiet or name.endswith("test"):  # the held-apart misses stay unseen
            shown = {**summary, "results": [r for r in summary["results"] if r["ok"]]}
        print_report(shown, name)
        keep = {k: v for k, v in summary.items() if k not in {"results", "failures_by_kind"}}
        keep["file"] = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        keep["wrong_questions"] = [
            r["question"] for r in shown["results"] if r["outcome"] == "wrong"
        ]
        report[name] = keep
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
