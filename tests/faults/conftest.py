"""The fault suite's shared machinery: writer processes that can be killed with SIGKILL at
seeded points, and a reader that polls a product's Delta table the whole time and judges
every snapshot it sees.

The suite asserts, for every fault: no bad or partial row is ever visible to a reader,
no good row is lost, no key is duplicated, every run ends, and the table converges to
what a clean build of the same input gives. Everything is seeded and offline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest

from dagster_project.core.settings import MeshSettings
from dagster_project.lake.storage import Lake
from tests.factories import REPO
from tests.faults import writer

WRITER_START_TIMEOUT_S = 60.0


@pytest.fixture
def fault_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MeshSettings:
    """A fresh MESH_HOME (and DAGSTER_HOME) below tmp_path."""
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "mesh"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return MeshSettings(home=str(tmp_path / "mesh"), storage_options={})


@dataclass
class Writer:
    """A writer process (tests/faults/writer.py) and what it reported."""

    process: subprocess.Popen
    wrote: list[int] = field(default_factory=list)
    _lines: list[str] = field(default_factory=list)

    def wait_for(self, line: str, timeout: float = WRITER_START_TIMEOUT_S) -> None:
        """Read its output until `line` (it must not end first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.process.stdout.readline().strip()
            if not got and self.process.poll() is not None:
                raise AssertionError(f"writer ended before {line!r}: {self.errors()}")
            self._note(got)
            if got == line:
                return
        raise AssertionError(f"writer did not print {line!r} within {timeout} s")

    def go(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, like the OOM killer or a lost machine."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._drain()

    def finish(self, timeout: float = 120.0) -> int:
        self.process.wait(timeout)
        self._drain()
        return self.process.returncode

    def errors(self) -> str:
        return self.process.stderr.read() if self.process.stderr else ""

    def _drain(self) -> None:
        for got in self.process.stdout.read().splitlines():
            self._note(got.strip())

    def _note(self, got: str) -> None:
        self._lines.append(got)
        if got.startswith("wrote "):
            self.wrote.append(int(got.split()[1]))


def start_writer(
    settings: MeshSettings, first: int, last: int, slow: float = 0.0, on_go: bool = False
) -> Writer:
    """A writer process writing generations first..last of both products, started and
    imported (it has printed `ready`); with `on_go` it writes once `Writer.go()` is called."""
    command = [sys.executable, "-m", "tests.faults.writer", settings.home]
    command += [str(first), str(last), "--slow", str(slow), *(["--on-go"] if on_go else [])]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = Writer(process)
    started.wait_for("ready")
    return started


# -- judging what readers see -----------------------------------------------------------


def _truth(mode: str, gens: list[int]) -> pl.DataFrame:
    return pl.concat([writer.generation(mode, g) for g in gens]).rename({"amount": "truth"})


def daily_problems(frame: pl.DataFrame) -> list[str]:
    """What is wrong with a snapshot of `faults/daily`: every day complete (LINES lines,
    one each), one generation over all days (a write replaces all days at once), and
    each row the one its generation wrote."""
    if frame.is_empty():
        return []
    problems = []
    days = frame.group_by("day").agg(lines=pl.len(), distinct=pl.col("line_id").n_unique())
    if sorted(days["day"].to_list()) != writer.DAYS:
        problems.append(f"days {sorted(days['day'].to_list())} are not all the days")
    if (days["lines"] != writer.LINES).any() or (days["distinct"] != writer.LINES).any():
        problems.append("a day has missing, partial or duplicated lines")
    if frame["gen"].n_unique() != 1:
        problems.append(f"generations {sorted(frame['gen'].unique())} mixed: a partial write")
    return problems + _bad_rows(frame, "partition_overwrite", ["day", "line_id", "gen"])


def keyed_problems(frame: pl.DataFrame) -> list[str]:
    """What is wrong with a snapshot of `faults/keyed`: unique keys 0..n-1 for whole
    generations (ITEMS each); one generation per block of ITEMS items, block b's at least
    b (generation g merges blocks 0..g as a whole); each row the one its generation wrote."""
    if frame.is_empty():
        return []
    problems = []
    ids = frame["item_id"]
    if ids.n_unique() != frame.height:
        problems.append(f"{frame.height - ids.n_unique()} duplicated item_id")
    if ids.min() != 0 or ids.max() != frame.height - 1 or frame.height % writer.ITEMS:
        problems.append(f"items are not whole generations': {frame.height} rows")
    blocks = frame.group_by(block=pl.col("item_id") // writer.ITEMS).agg(
        gens=pl.col("gen").n_unique(), gen=pl.col("gen").min()
    )
    if (blocks["gens"] != 1).any():
        problems.append("a block of items mixes generations: a partial merge")
    if (blocks["gen"] < blocks["block"]).any():
        problems.append("a block holds a generation that never wrote it")
    return problems + _bad_rows(frame, "merge", ["item_id", "gen"])


def _bad_rows(frame: pl.DataFrame, mode: str, key: list[str]) -> list[str]:
    truth = _truth(mode, sorted(frame["gen"].unique().to_list()))
    joined = frame.join(truth, on=key, how="left")
    bad = joined.filter(pl.col("truth").is_null() | (pl.col("truth") != pl.col("amount")))
    return [f"{bad.height} rows no generation wrote"] if bad.height else []


PROBLEMS = {"faults/daily": daily_problems, "faults/keyed": keyed_problems}


@dataclass
class Watch:
    """What a reader saw while polling: snapshots read, problems, and the versions."""

    reads: int = 0
    problems: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)


@contextlib.contextmanager
def watching(settings: MeshSettings) -> Iterator[dict[str, Watch]]:
    """Poll both products in a thread for as long as the block runs, judging every
    snapshot (PROBLEMS); a snapshot with fewer rows than one seen before lost rows."""
    lake, stop = Lake(settings), threading.Event()
    seen = {key: Watch() for key in PROBLEMS}

    def poll() -> None:
        while not stop.wait(0.005):
            for key, watch in seen.items():
                if lake.exists(key):
                    _judge(lake, key, watch)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(30)


def _judge(lake: Lake, key: str, watch: Watch) -> None:
    try:
        frame = lake.read(key)
    except Exception as exc:  # an unreadable table is a fault too
        watch.problems.append(f"unreadable: {exc}")
        return
    watch.reads += 1
    watch.problems += PROBLEMS[key](frame)
    if watch.rows and frame.height < watch.rows[-1]:
        watch.problems.append(f"{watch.rows[-1] - frame.height} rows lost")
    watch.rows.append(frame.height)


def clean_build(tmp_path: Path, gens: range) -> dict[str, pl.DataFrame]:
    """Both products built once, without faults, from the same generations."""
    settings = MeshSettings(home=str(tmp_path / "clean"), storage_options={})
    lake = Lake(settings)
    for gen in gens:
        for mode, contract in writer.contracts().items():
            lake.write(contract, writer.generation(mode, gen))
    return {key: sorted_rows(lake.read(key)) for key in PROBLEMS}


def sorted_rows(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(sorted(frame.columns)).sort(sorted(frame.columns))
