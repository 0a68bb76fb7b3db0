"""Benchmark: how fast `mesh` starts.

    python bench/cli.py [--repeat R] [--home DIR | --build] [--json FILE]

Each command runs R times as a fresh process (after one untimed warm-up run, so every
command starts with the files in the page cache), round-robin so that a busy machine
slows all of them alike: `mesh --help` (lists every command without importing one),
beside the floor of any Typer app with rich help (two commands that import nothing),
`mesh ask --help` (imports the ask group), `mesh share --help` (a plugin), and importing
the CLI's root module; with a built mesh (`--home` a MESH_HOME with the demo's products, or
`--build`: bench/ask.py builds a small one, 14 days and 2,000 order lines, untimed), also
`mesh ask "<question>"` end to end, through its warm process (README: "Asking fast"), and
in-process with MESH_ASK_DAEMON=off (start, interpreter, governed reads, DuckDB in a
query worker, the narrative, the audit), and `mesh search "<query>"`. Baseline, measured in
the same run: `python -c pass`, the
interpreter's own start; `ratio` = median / baseline median; `cpu s`: the median CPU
time (user + system) of a run, which a busy machine inflates less than wall-clock time.
Targets (issue 16): `mesh --help` within 0.3 s and `mesh ask` within 0.5 s on a 2-core
machine. `mesh` is the script
beside this Python, run with this environment (set PYTHONPATH to measure a worktree).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

PYTHON = sys.executable
MESH = str(Path(PYTHON).parent / "mesh")
BASELINE = "python -c pass"
# Any Typer app's floor: the --help of two commands that import nothing.
TYPER_FLOOR = (
    "import typer\napp = typer.Typer()\napp.command('a')(print)\napp.command('b')(print)\napp()"
)
COMMANDS = {
    BASELINE: [PYTHON, "-c", "pass"],
    "typer floor --help": [PYTHON, "-c", TYPER_FLOOR, "--help"],
    "import dagster_project.app.cli": [PYTHON, "-c", "import dagster_project.app.cli"],
    "mesh --help": [MESH, "--help"],
    "mesh ask --help": [MESH, "ask", "--help"],
    "mesh share --help": [MESH, "share", "--help"],
}
QUESTION = "How many stores are there?"
SEARCH = "where are our shops"
ASK = f'mesh ask "{QUESTION}"'
ASK_HERE = f"{ASK}, in-process (MESH_ASK_DAEMON=off)"
TARGETS = {"mesh --help": 0.3, ASK: 0.5}


def mesh_commands(home: Path) -> dict[str, list[str]]:
    """The commands that read a built mesh (run with MESH_HOME=home)."""
    os.environ["MESH_HOME"] = str(home)
    os.environ["MESH_ASK_DAEMON_IDLE"] = "120"  # the warm process ends soon after the bench
    here = ["env", "MESH_ASK_DAEMON=off", MESH, "ask", QUESTION]
    search, searched_here = [MESH, "search", SEARCH], ["env", "MESH_ASK_DAEMON=off", MESH]
    return {
        ASK: [MESH, "ask", QUESTION],
        ASK_HERE: here,
        f'mesh search "{SEARCH}"': search,
        f'mesh search "{SEARCH}", in-process': [*searched_here, "search", SEARCH],
    }


def build_small_mesh() -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import tempfile

    from ask import build_mesh

    home = Path(tempfile.mkdtemp(prefix="cli-bench-"))
    os.environ["MESH_HOME"] = str(home)
    build_mesh(home, days=14, scale=2_000)
    return home


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(command: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one run; a failing command stops the benchmark."""
    env = {**os.environ, "COLUMNS": "100"}  # the same help layout on every terminal
    cpu, started = _children_cpu(), time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return time.perf_counter() - started, _children_cpu() - cpu


def measure(repeat: int) -> dict[str, list[tuple[float, float]]]:
    for command in COMMANDS.values():
        run_once(command)  # warm-up (the first `mesh ask` starts its warm process)
    if ASK in COMMANDS:
        time.sleep(5)
        run_once(COMMANDS[ASK])  # its first question, untimed
        run_once(COMMANDS[f'mesh search "{SEARCH}"'])  # and its first search (the index)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
    for _ in range(repeat):
        for name, command in COMMANDS.items():
            runs[name].append(run_once(command))
    return runs


def summary(runs: dict[str, list[tuple[float, float]]]) -> dict:
    base = statistics.median(wall for wall, _ in runs[BASELINE])
    rows = {}
    for name, measured in runs.items():
        walls = [wall for wall, _ in measured]
        median = statistics.median(walls)
        rows[name] = {
            "median_s": round(median, 4),
            "min_s": round(min(walls), 4),
            "max_s": round(max(walls), 4),
            "cpu_median_s": round(statistics.median(cpu for _, cpu in measured), 4),
            "ratio": round(median / base, 2),
            "target_s": TARGETS.get(name),
        }
    return {
        "repeat": len(runs[BASELINE]),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "commands": rows,
    }


def print_table(result: dict) -> None:
    title = (
        f"mesh start-up, {result['repeat']} runs each "
        f"({result['cpus']} CPUs, load average {result['load_average_1m']})"
    )
    table = Table(title=title)
    for column in ("command", "median s", "min s", "max s", "cpu s", "ratio", "target s"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for name, row in result["commands"].items():
        target = row["target_s"]
        met = "" if target is None else (" ok" if row["median_s"] <= target else " MISSED")
        table.add_row(
            name,
            f"{row['median_s']:.3f}",
            f"{row['min_s']:.3f}",
            f"{row['max_s']:.3f}",
            f"{row['cpu_median_s']:.3f}",
            f"{row['ratio']:.1f}",
            "-" if target is None else f"{target}{met}",
        )
    Console().print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per command")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--home", type=Path, help="a built MESH_HOME: also time mesh ask")
    parser.add_argument("--build", action="store_true", help="build a small mesh to ask")
    args = parser.parse_args(argv)
    home = args.home or (build_small_mesh() if args.build else None)
    if home is not None:
        COMMANDS.update(mesh_commands(home))
    result = summary(measure(args.repeat))
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
