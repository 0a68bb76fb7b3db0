"""A writer process for the fault suite: writes generations of a product through
`Lake.write`, slowly enough to be killed in the middle of one.

    python -m tests.faults.writer HOME FIRST LAST [--slow SECONDS]

Generation `g` of the two products (the ground truth the readers are checked against):

- `faults/daily` (partition_overwrite): every day of DAYS, each with exactly LINES rows
  (`line_id` 0..LINES-1), all stamped `gen = g`: one write replaces every day at once.
- `faults/keyed` (merge on `item_id`): items 0..(g+1)*ITEMS-1, all stamped `gen = g`: one
  merge updates every earlier item and inserts ITEMS new ones.

`--slow` streams the rows to delta-rs in small record batches with a pause between them,
so a kill lands while data files are being written, before their commit, or between
commits. Each generation writes both products (the daily one first); the process prints
`ready` once imported (with `--on-go`, it then waits for a line on stdin, so that two
writers start together) and `wrote N` after each commit (N counts them from 1).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import polars as pl
import pyarrow as pa

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.lake import storage
from dagster_project.lake.storage import Lake
from tests.factories import column, contract_document

DAYS = [date(2025, 3, 1) + timedelta(days=i) for i in range(4)]
LINES = 500
ITEMS = 400
SEED = 15


def contracts() -> dict[str, Contract]:
    """The two products the suite writes, by write mode."""
    daily = contract_document(
        [
            column("day", "date", primaryKey=True, primaryKeyPosition=1, partitioned=True),
            column("line_id", "integer", primaryKey=True, primaryKeyPosition=2, required=True),
            column("gen", "integer", required=True),
            column("amount", "number", required=True),
        ],
        domain="faults",
        product="daily",
        write_mode="partition_overwrite",
    )
    keyed = contract_document(
        [
            column("item_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("gen", "integer", required=True),
            column("amount", "number", required=True),
        ],
        domain="faults",
        product="keyed",
        write_mode="merge",
    )
    return {
        "partition_overwrite": Contract(daily, "<faults/daily>"),
        "merge": Contract(keyed, "<faults/keyed>"),
    }


def generation(mode: str, gen: int) -> pl.DataFrame:
    """The rows generation `gen` of the `mode` product writes (seeded: always the same)."""
    rng = np.random.default_rng([SEED, gen])
    if mode == "partition_overwrite":
        n = len(DAYS) * LINES
        return pl.DataFrame(
            {
                "day": np.repeat(np.array(DAYS, dtype="datetime64[D]"), LINES),
                "line_id": np.tile(np.arange(LINES), len(DAYS)),
                "gen": np.full(n, gen),
                "amount": rng.uniform(1, 100, n).round(2),
            }
        ).with_columns(pl.col("day").cast(pl.Date))
    n = (gen + 1) * ITEMS
    return pl.DataFrame(
        {"item_id": np.arange(n), "gen": np.full(n, gen), "amount": rng.uniform(1, 100, n).round(2)}
    )


def slow_batches(pause: float, rows: int = 100):
    """A replacement for `storage.in_batches` that streams `rows` at a time, pausing."""

    def stream(table: pa.Table) -> pa.RecordBatchReader:
        def batches() -> Iterator[pa.RecordBatch]:
            for batch in table.to_batches(max_chunksize=rows):
                time.sleep(pause)
                yield batch

        return pa.RecordBatchReader.from_batches(table.schema, batches())

    return stream


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home")
    parser.add_argument("first", type=int)
    parser.add_argument("last", type=int)
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--on-go", action="store_true", help="start on a `go` line on stdin")
    args = parser.parse_args()
    if args.slow:
        storage.in_batches = slow_batches(args.slow)
    lake = Lake(MeshSettings(home=args.home, storage_options={}))
    print("ready", flush=True)
    if args.on_go:
        sys.stdin.readline()
    commits = 0
    for gen in range(args.first, args.last + 1):
        for mode, contract in contracts().items():
            lake.write(contract, generation(mode, gen))
            commits += 1
            print(f"wrote {commits}", flush=True)


if __name__ == "__main__":
    main()
