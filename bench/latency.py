"""Benchmark: event latency with the daemon, from a landed file to the catalog.

    python bench/latency.py [--rows N] [--days D] [--timeout S] [--json FILE]

Setup (not timed): the simulator lands `--days` days (`--rows` order lines in all) in a
fresh MESH_HOME, and the whole mesh is built in-process (`app.refresh`) onto the
instance of a fresh DAGSTER_HOME. Then a real `dagster dev` (webserver, daemon, one code
server per location; the e2e tests' `DagsterDev`) serves that home with its sensors and
automation RUNNING and runs unthrottled, and the bench waits until no run is active.

Timed: the simulator lands one more day (t0 = the files are written). The bench polls
GraphQL for new materializations (their own timestamps, not the poll's) until the
catalog has materialized since, and no run
has been active for 75 s (over two automation ticks):

landing_to_first_product_s     the first landed product materialized
landing_to_last_downstream_s   the last product (not governance) downstream of the landed
                               ones that refreshed (has an automation condition that fired)
landing_to_catalog_s           the catalog's last materialization

`runs`: each run since the landing, when a tick asked for it, when it started and ended
(the breakdown: tick waits, launches, work). `catalog_stale` counts catalog runs that
published while one of its inputs was materializing (it listed that input's previous
state); it must be 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's mesh and its e2e helpers

from dagster_project.app.cli.instance import instance_config  # noqa: E402
from dagster_project.core.settings import Settings  # noqa: E402
from tests.e2e.dagster_server import DagsterDev  # noqa: E402

START = date(2025, 1, 1)
CATALOG = "governance/catalog"
LOCATIONS = ("sales", "inventory", "customers", "governance")
ACTIVE = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED"]
# The instance `mesh` writes (pools, run monitoring, sensors in threads), the queue
# polled every second, no run held back.
INSTANCE_YAML = instance_config(Settings()) + "run_queue:\n  dequeue_interval_seconds: 1\n"

ASSET_NODES = """
{
  assetNodes {
    assetKey { path }
    dependedByKeys { path }
    automationCondition { label }
    assetMaterializations(limit: 1) { timestamp runId }
  }
}
"""

MATERIALIZATIONS = """
query Materializations($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset { assetMaterializations(limit: 50) { timestamp runId } }
  }
}
"""

ACTIVE_RUNS = """
query Active($statuses: [RunStatus!]) {
  runsOrError(filter: {statuses: $statuses}) { ... on Runs { results { runId } } }
}
"""

RUNS_SINCE = """
query RunsSince($after: Float) {
  runsOrError(filter: {createdAfter: $after}) {
    ... on Runs {
      results { status creationTime startTime endTime tags { key value } assetSelection { path } }
    }
  }
}
"""

RUN_TIMES = """
query RunTimes($runId: ID!) { runOrError(runId: $runId) { ... on Run { startTime endTime } } }
"""


def build(home: Path, dagster_home: Path, rows: int, days: int) -> None:
    """Land `days` days and build every asset once onto DAGSTER_HOME's instance."""
    os.environ["MESH_HOME"], os.environ["DAGSTER_HOME"] = str(home), str(dagster_home)
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)
    import dagster as dg

    from dagster_project.app.refresh import refresh
    from dagster_project.checks.quality.companions import discover_contracts
    from dagster_project.core.settings import MeshSettings
    from dagster_project.core.workspace import load_definitions, mesh_assets
    from demo.simulator import simulate

    settings = MeshSettings(home=str(home))
    simulate(settings, days=days, scale=rows, start=START)
    age = time.time() - 2 * settings.landing_min_age  # complete: no wait for the build
    for path in (home / "landing").rglob("*.*"):
        os.utime(path, (age, age))
    workspace = ROOT / "workspace.yaml"
    assets = mesh_assets(load_definitions(workspace))
    with dg.DagsterInstance.get() as instance:
        report = refresh(
            assets, discover_contracts(path=workspace), settings=settings, instance=instance
        )
    if not report.success:
        raise SystemExit("the initial build failed: see the Dagster instance's runs")


def land_next_day(home: Path, rows: int, days: int) -> float:
    from dagster_project.core.settings import MeshSettings
    from demo.simulator import simulate

    simulate(MeshSettings(home=str(home)), days=1, scale=max(rows // days, 1))
    return time.time()


def wait_idle(dev: DagsterDev, quiet: float, timeout: float) -> None:
    """Until no run has been active for `quiet` seconds."""
    deadline, idle_since = time.monotonic() + timeout, time.monotonic()
    while time.monotonic() < deadline:
        if active_runs(dev):
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= quiet:
            return
        time.sleep(1)
    raise SystemExit(f"runs still active after {timeout:.0f}s")


def active_runs(dev: DagsterDev) -> list[str]:
    runs = dev.graphql(ACTIVE_RUNS, statuses=ACTIVE)["runsOrError"]["results"]
    return [r["runId"] for r in runs]


def key(node: dict[str, Any]) -> str:
    return "/".join(node["assetKey"]["path"])


def downstream(nodes: dict[str, dict[str, Any]], landed: set[str]) -> set[str]:
    """Products that refresh on their own downstream of `landed` (governance aside)."""
    seen, todo = set(), list(landed)
    while todo:
        for child in nodes[todo.pop()]["dependedByKeys"]:
            name = "/".join(child["path"])
            if name not in seen:
                seen.add(name)
                todo.append(name)
    automated = {k for k in seen if nodes[k]["automationCondition"] is not None}
    return {k for k in automated if not k.startswith("governance/")}


def materialized_after(dev: DagsterDev, name: str, t0: float) -> list[dict[str, Any]]:
    """The asset's materializations since t0 (seconds since epoch), oldest first."""
    asset = dev.graphql(MATERIALIZATIONS, key={"path": name.split("/")})["assetOrError"]
    found = asset.get("assetMaterializations", []) if asset else []
    new = [{"at": float(m["timestamp"]) / 1000, "run": m["runId"]} for m in found]
    return sorted((m for m in new if m["at"] > t0), key=lambda m: m["at"])


def follow(dev: DagsterDev, landed: set[str], t0: float, quiet: float, timeout: float) -> dict:
    """Poll until the catalog has materialized since t0 and no run has been active for
    `quiet` seconds (longer than the sensors' interval: nothing more is coming)."""
    nodes = {key(n): n for n in dev.graphql(ASSET_NODES)["assetNodes"]}
    wanted = downstream(nodes, landed) | landed
    deadline, idle_since = time.monotonic() + timeout, time.monotonic()
    while time.monotonic() < deadline:
        if active_runs(dev):
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= quiet and materialized_after(dev, CATALOG, t0):
            times = {k: materialized_after(dev, k, t0) for k in sorted(wanted)}
            catalogs = materialized_after(dev, CATALOG, t0)
            return outcome(dev, times, catalogs, landed, t0)
        time.sleep(2)
    raise SystemExit(f"no catalog, or runs still active, {timeout:.0f}s after landing")


def outcome(
    dev: DagsterDev, times: dict[str, list], catalogs: list, landed: set[str], t0: float
) -> dict[str, Any]:
    not_refreshed = sorted(k for k, v in times.items() if not v)
    times = {k: v for k, v in times.items() if v}
    first = min(times[k][0]["at"] for k in landed if k in times)
    last = max(m[-1]["at"] for m in times.values())
    return {
        "landing_to_first_product_s": round(first - t0, 1),
        "landing_to_last_downstream_s": round(last - t0, 1),
        "landing_to_catalog_s": round(catalogs[-1]["at"] - t0, 1),
        "products_s": {k: [round(m["at"] - t0, 1) for m in v] for k, v in times.items()},
        "catalog_s": [round(c["at"] - t0, 1) for c in catalogs],
        "catalog_stale": stale(dev, catalogs, times),
        "not_refreshed": not_refreshed,
        "runs": timeline(dev, t0),
    }


def timeline(dev: DagsterDev, t0: float) -> list[dict[str, Any]]:
    """Every run since t0, oldest first: who asked (sensor), for what, and when it was
    created (a tick asked), started (launched: a process importing the location) and
    ended, in seconds after landing. The gaps are where the time goes."""
    runs = dev.graphql(RUNS_SINCE, after=t0)["runsOrError"]["results"]
    rows = []
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        rows.append(
            {
                "by": tags.get("dagster/sensor_name", tags.get("dagster/schedule_name", "?")),
                "assets": ["/".join(a["path"]) for a in run["assetSelection"] or []],
                "status": run["status"],
                **{
                    name: round(float(run[field]) - t0, 1) if run[field] else None
                    for name, field in [
                        ("created_s", "creationTime"),
                        ("started_s", "startTime"),
                        ("ended_s", "endTime"),
                    ]
                },
            }
        )
    return sorted(rows, key=lambda r: r["created_s"])


def stale(dev: DagsterDev, catalogs: list[dict], times: dict[str, list]) -> int:
    """Catalog runs during which an input materialized: they listed its previous state."""
    count = 0
    for catalog in catalogs:
        run = dev.graphql(RUN_TIMES, runId=catalog["run"])["runOrError"]
        started = float(run["startTime"])
        count += any(started < m["at"] < catalog["at"] for ms in times.values() for m in ms)
    return count


def bench(rows: int, days: int, timeout: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="meshwork-latency-"))
    home, dagster_home = work / "mesh", work / "dagster_home"
    dev = None
    try:
        started = time.perf_counter()
        build(home, dagster_home, rows, days)
        build_s = time.perf_counter() - started
        dev = DagsterDev.start(
            dagster_home=dagster_home,
            log_path=work / "dagster_dev.log",
            env={"MESH_HOME": str(home)},
            instance_yaml=INSTANCE_YAML,
        )
        dev.wait_for_locations(LOCATIONS, timeout=timeout)
        wait_idle(dev, quiet=45, timeout=timeout)  # sensors' and automation's first ticks
        before = {p.relative_to(home) for p in (home / "landing").rglob("*.*")}
        t0 = land_next_day(home, rows, days)
        new = {p.relative_to(home) for p in (home / "landing").rglob("*.*")} - before
        landed = {str(p.parent.relative_to("landing")) for p in new}
        result = follow(dev, landed, t0, quiet=75, timeout=timeout)
        return {
            "rows": rows,
            "days": days,
            "build_s": round(build_s, 1),
            **result,
            "landed": sorted(landed),
            "cpus": os.cpu_count(),
        }
    finally:
        if dev is not None:
            dev.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(result: dict[str, Any]) -> str:
    lines = [
        f"landing -> first product      {result['landing_to_first_product_s']:6.1f} s",
        f"landing -> last downstream    {result['landing_to_last_downstream_s']:6.1f} s",
        f"landing -> catalog            {result['landing_to_catalog_s']:6.1f} s",
        f"catalog runs: {result['catalog_s']} s after landing;"
        f" stale publications: {result['catalog_stale']}",
        f"downstream with no new materialization: {', '.join(result['not_refreshed']) or 'none'}",
    ]
    lines += [f"  {k}: {v} s" for k, v in sorted(result["products_s"].items())]
    lines.append("runs (s after landing: created -> started -> ended; by; assets):")
    lines += [
        f"  {r['created_s']:6.1f} -> {r['started_s'] or 0:6.1f} -> {r['ended_s'] or 0:6.1f}"
        f"  {r['status']:<8} {r['by']:<28} {', '.join(r['assets'])[:80]}"
        for r in result["runs"]
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time landing -> products -> catalog.")
    parser.add_argument("--rows", type=int, default=20_000, help="order lines to build with")
    parser.add_argument("--days", type=int, default=3, help="days built before the new one")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per wait")
    parser.add_argument("--json", type=Path, help="write the results as one JSON object")
    args = parser.parse_args(argv)
    result = bench(args.rows, args.days, args.timeout)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
