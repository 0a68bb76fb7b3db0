"""kill -9 of a writer in the middle of a Delta write (a partition overwrite of every
day) or of a merge, and two writers at once on the same products: readers never see a
bad, partial or duplicated row, no good row is lost, and a rerun converges to a clean
build of the same input."""

from __future__ import annotations

import random
import time
from pathlib import Path

import polars as pl

from dagster_project.core.settings import MeshSettings
from dagster_project.lake.storage import Lake
from tests.faults import writer
from tests.faults.conftest import PROBLEMS, clean_build, sorted_rows, start_writer, watching

LAST = 3  # generations 0..LAST, each a commit to both products
KILLS = 2
SLOW = 0.01  # seconds between 100-row batches: each write streams for 0.05-0.2 s


def _converged(settings: MeshSettings, tmp_path: Path) -> None:
    lake, clean = Lake(settings), clean_build(tmp_path, range(LAST + 1))
    for key in PROBLEMS:
        assert sorted_rows(lake.read(key)).equals(clean[key]), key
        assert lake.info(key).rows == clean[key].height  # the log's statistics agree


def test_a_writer_killed_mid_write_shows_no_bad_row_and_a_rerun_converges(
    fault_home: MeshSettings, tmp_path: Path
) -> None:
    rng = random.Random(15)
    with watching(fault_home) as seen:
        for _ in range(KILLS):
            killed = start_writer(fault_home, 0, LAST, slow=SLOW)
            # after a seeded number of commits, a seeded moment into the next write
            killed.wait_for(f"wrote {rng.randint(1, 2 * LAST)}")
            time.sleep(rng.uniform(0.0, 0.1))
            killed.kill()
            assert killed.process.returncode == -9 and len(killed.wrote) < 2 * (LAST + 1)
        rerun = start_writer(fault_home, 0, LAST)
        assert rerun.finish() == 0, rerun.errors()
    for key, watch in seen.items():
        assert watch.reads > 0 and watch.problems == [], key
    _converged(fault_home, tmp_path)


def test_two_writers_at_once_both_finish_or_one_fails_cleanly(
    fault_home: MeshSettings, tmp_path: Path
) -> None:
    lake = Lake(fault_home)
    for mode, contract in writer.contracts().items():
        lake.write(contract, writer.generation(mode, 0))
    with watching(fault_home) as seen:
        both = [start_writer(fault_home, 1, LAST, slow=SLOW, on_go=True) for _ in range(2)]
        for started in both:  # both imported: now they write at the same moment
            started.go()
        codes = [w.finish() for w in both]
    failed = [w for w, code in zip(both, codes, strict=True) if code != 0]
    assert len(failed) <= 1, [w.errors() for w in failed]
    for loser in failed:  # it stopped on the other's commit, and says so
        assert "CommitFailedError" in loser.errors() or "conflict" in loser.errors().lower()
        assert start_writer(fault_home, 1, LAST).finish() == 0
    for key, watch in seen.items():
        assert watch.problems == [], key
    _converged(fault_home, tmp_path)


def test_the_judges_see_torn_duplicated_and_wrong_rows() -> None:
    daily, keyed = (writer.generation(m, 1) for m in ("partition_overwrite", "merge"))
    assert PROBLEMS["faults/daily"](daily) == [] and PROBLEMS["faults/keyed"](keyed) == []
    torn_day = daily.filter(pl.col("day") != writer.DAYS[0]).vstack(
        writer.generation("partition_overwrite", 0).filter(pl.col("day") == writer.DAYS[0])
    )
    assert any("partial write" in p for p in PROBLEMS["faults/daily"](torn_day))
    half_day = daily.filter((pl.col("day") != writer.DAYS[1]) | (pl.col("line_id") < 10))
    assert any("partial" in p for p in PROBLEMS["faults/daily"](half_day))
    torn_merge = keyed.with_columns(gen=pl.when(pl.col("item_id") == 3).then(0).otherwise(1))
    assert any("partial merge" in p for p in PROBLEMS["faults/keyed"](torn_merge))
    assert any("duplicated" in p for p in PROBLEMS["faults/keyed"](keyed.vstack(keyed[:1])))
    wrong = keyed.with_columns(amount=pl.col("amount") + 1)
    assert PROBLEMS["faults/keyed"](wrong) == [f"{keyed.height} rows no generation wrote"]
