"""Benchmark: discovery quality and latency on paraphrased queries, offline.

    python bench/discovery.py [--json FILE]

The queries and their targets are in bench/discovery_queries.yaml: the main set (the
target: MRR >= 0.9, a third of the queries sharing no word with their target) and a
holdout written after the ranking weights were set. Both sides search the same entries
(every product, column and metric of the workspace):

baseline  plain BM25 over each entry's names, description and context, one field.
mesh      `dagster_project.metadata.discovery.SemanticIndex` with the offline provider: field-
          weighted BM25F, thesaurus and spelling, contract/semantic-layer/glossary
          synonyms, what a metric can be broken down by, and hashed n-gram vectors.

`ratio` = mesh / baseline. Latency is per query, after the index is built.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ROOT / "bench" / "discovery_queries.yaml"
TARGET = 0.9


def load_queries(path: Path = QUERIES) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text())["queries"]


def baseline_search(entries):
    from dagster_project.ai.text import BM25, terms

    bm25 = BM25([terms(f"{' '.join(e.names)} {e.description} {e.context}") for e in entries])

    def search(query: str, k: int) -> list[str]:
        scores = bm25.scores(dict.fromkeys(terms(query), 1.0))
        order = sorted(range(len(entries)), key=lambda i: (-scores[i], entries[i].id))
        return [entries[i].id for i in order[:k] if scores[i] > 0]

    return search


def summarise(judged) -> dict[str, float]:
    from dagster_project.metadata.discovery import mean_reciprocal_rank

    ms = [j.seconds * 1000 for j in judged]
    return {
        "mrr": mean_reciprocal_rank(judged),
        "top1": sum(1 for j in judged if j.rank == 1) / len(judged),
        "mrr_no_overlap": mean_reciprocal_rank([j for j in judged if j.no_overlap]),
        "p50_ms": statistics.median(ms),
        "p95_ms": statistics.quantiles(ms, n=20)[-1] if len(ms) > 1 else ms[0],
    }


def run() -> dict[str, Any]:
    from dagster_project.checks.quality.companions import discover_contracts
    from dagster_project.metadata.discovery import (
        SemanticIndex,
        build_entries,
        judge,
        mean_reciprocal_rank,
    )
    from dagster_project.metadata.semantics import load_semantic_layer

    contracts = discover_contracts()
    entries = build_entries(contracts, load_semantic_layer(contracts=contracts))
    started = time.perf_counter()
    index = SemanticIndex(entries)
    build_ms = (time.perf_counter() - started) * 1000
    queries = load_queries()
    main = [q for q in queries if not q.get("holdout")]
    holdout = [q for q in queries if q.get("holdout")]

    def mesh_search(query: str, k: int) -> list[str]:
        return [h.entry.id for h in index.search(query, k=k)]

    mesh = judge(mesh_search, entries, main)
    base = judge(baseline_search(entries), entries, main)
    mesh_holdout = judge(mesh_search, entries, holdout)
    ours, theirs = summarise(mesh), summarise(base)
    return {
        **ours,
        "queries": len(main),
        "queries_no_overlap": sum(1 for j in mesh if j.no_overlap),
        "mrr_holdout": mean_reciprocal_rank(mesh_holdout),
        "queries_holdout": len(holdout),
        "index_entries": len(entries),
        "index_build_ms": build_ms,
        "baseline_mrr": theirs["mrr"],
        "baseline_top1": theirs["top1"],
        "baseline_mrr_no_overlap": theirs["mrr_no_overlap"],
        "baseline_p50_ms": theirs["p50_ms"],
        "mrr_ratio": ours["mrr"] / theirs["mrr"] if theirs["mrr"] else float("inf"),
        "target_mrr": TARGET,
        "target_met": ours["mrr"] >= TARGET,
        "misses": [f"{j.query!r} -> {j.target} at rank {j.rank}" for j in mesh if j.rank != 1],
    }


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Discovery on {result['queries']} queries ({result['index_entries']} entries)"
    )
    for column in ("measure", "baseline (plain BM25)", "mesh (offline)", "ratio"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for label, key in (
        ("MRR", "mrr"),
        ("top-1", "top1"),
        ("MRR, no shared word", "mrr_no_overlap"),
    ):
        ours, theirs = result[key], result[f"baseline_{key}"]
        ratio = f"{ours / theirs:.2f}x" if theirs else "-"
        table.add_row(label, f"{theirs:.3f}", f"{ours:.3f}", ratio)
    table.add_row(
        "latency p50 (ms)",
        f"{result['baseline_p50_ms']:.2f}",
        f"{result['p50_ms']:.2f}",
        f"{result['p50_ms'] / result['baseline_p50_ms']:.1f}x",
    )
    console = Console()
    console.print(table)
    verdict = "met" if result["target_met"] else "NOT met"
    console.print(
        f"target MRR >= {TARGET}: {verdict}; {result['queries_no_overlap']} of "
        f"{result['queries']} queries share no word with their target; holdout "
        f"({result['queries_holdout']} queries written after tuning) MRR "
        f"{result['mrr_holdout']:.3f}; p95 {result['p95_ms']:.2f} ms"
    )
    for miss in result["misses"]:
        console.print(f"  not first: {miss}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark discovery quality and latency.")
    parser.add_argument("--json", type=Path, help="write the results as one flat JSON object")
    args = parser.parse_args(argv)
    result = run()
    print_table(result)
    if args.json:
        flat = {k: v for k, v in result.items() if k != "misses"}
        args.json.write_text(json.dumps(flat, indent=2) + "\n")


if __name__ == "__main__":
    main()
