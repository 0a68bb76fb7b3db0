"""Benchmark: the HTTP API's answer time against running its compiled SQL directly.

    python bench/ask_api.py --home DIR [--questions N] [--repeat R] [--json FILE]

`--home` is a MESH_HOME with the demo's products built (`bench/ask.py` builds one, or
`bench/cli.py --build DIR`). For each of the first N answerable questions of
bench/ask_questions.yaml, `POST /api/ask` runs in process through FastAPI's test client
with an analyst's API key: authentication, the interpreter, the SQL guard, governed
masked reads, DuckDB in a query worker, the narrative, the audit. Against it, the SQL the
answer says it ran, executed directly over the same Delta tables (register them in an
in-memory DuckDB, run the SQL). Each is the median of R runs after a warm-up.
Target (issue 16): API p50 <= 1.2 x direct p50 + 20 ms; `ratio` = API p50 / direct p50.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "bench" / "ask_questions.yaml"


def _median_ms(fn, repeat: int) -> tuple[Any, float]:
    result, times = None, []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return result, statistics.median(times)


def run(home: Path, count: int, repeat: int) -> dict[str, Any]:
    os.environ["MESH_HOME"] = str(home)
    from fastapi.testclient import TestClient

    from dagster_project.access.api_keys import ApiKeyStore
    from dagster_project.ask.api import create_app
    from dagster_project.ask.guard import guard_sql
    from dagster_project.ask.semantic_sql import connect
    from dagster_project.checks.quality.companion_contracts import discover_contracts
    from dagster_project.lake.storage import Lake

    lake = Lake()
    _, key = ApiKeyStore(lake.settings).create(f"bench-{os.getpid()}", "analyst", days=1)
    headers = {"Authorization": f"Bearer {key}"}
    client = TestClient(create_app(lake))
    questions = [q for q in yaml.safe_load(QUESTIONS.read_text())["questions"] if q["gold"]]
    products = {c.key for c in discover_contracts()}

    def api(question: str) -> dict[str, Any]:
        response = client.post("/api/ask", json={"question": question}, headers=headers)
        response.raise_for_status()
        return response.json()

    def direct(sql: str) -> list[tuple]:
        with connect(lake, guard_sql(sql, products)) as con:
            return con.sql(sql).fetchall()

    rows = []
    for q in questions:
        if len(rows) == count:
            break
        first = api(q["question"])  # warm-up, and the SQL it ran
        if not first.get("answered") or not first.get("sql"):
            continue
        direct(first["sql"])
        _, api_ms = _median_ms(lambda q=q: api(q["question"]), repeat)
        _, sql_ms = _median_ms(lambda s=first["sql"]: direct(s), repeat)
        rows.append({"question": q["question"], "api_ms": api_ms, "sql_ms": sql_ms})
    api_p50 = statistics.median(r["api_ms"] for r in rows)
    sql_p50 = statistics.median(r["sql_ms"] for r in rows)
    return {
        "questions": len(rows),
        "repeat": repeat,
        "api_p50_ms": round(api_p50, 2),
        "sql_p50_ms": round(sql_p50, 2),
        "ratio": round(api_p50 / sql_p50, 2),
        "overhead_p50_ms": round(statistics.median(r["api_ms"] - r["sql_ms"] for r in rows), 2),
        "target_met": api_p50 <= 1.2 * sql_p50 + 20,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "rows": rows,
    }


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"POST /api/ask vs its SQL run directly ({result['questions']} questions, "
        f"median of {result['repeat']}, load average {result['load_average_1m']})"
    )
    for column in ("question", "api ms", "direct sql ms", "ratio"):
        table.add_column(column, justify="left" if column == "question" else "right")
    for r in result["rows"]:
        table.add_row(
            r["question"],
            f"{r['api_ms']:.1f}",
            f"{r['sql_ms']:.1f}",
            f"{r['api_ms'] / r['sql_ms']:.2f}",
        )
    table.add_row(
        "p50",
        f"{result['api_p50_ms']:.1f}",
        f"{result['sql_p50_ms']:.1f}",
        f"{result['ratio']:.2f}",
        style="bold",
    )
    console = Console()
    console.print(table)
    verdict = "met" if result["target_met"] else "NOT met"
    console.print(f"target API p50 <= 1.2 x direct p50 + 20 ms: {verdict}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a built MESH_HOME")
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    result = run(args.home, args.questions, args.repeat)
    print_table(result)
    if args.json:
        flat = {k: v for k, v in result.items() if k != "rows"}
        args.json.write_text(json.dumps(flat, indent=2) + "\n")


if __name__ == "__main__":
    main()
