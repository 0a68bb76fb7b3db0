"""Refresh the mesh in-process, in dependency order (`mesh refresh`, `mesh demo`, the
end-to-end tests and the refresh benchmark).

Assets run in as few Dagster runs as partitioning allows: unpartitioned products whose
inputs are ready, then the daily products that share a partitions definition (one start,
see products.partitions) over the landed days in one run (single-run backfill), and so on
until every asset has been materialized and checked. A run covers the days of the window
that its assets have: days before their first day (or after today) are skipped for them,
not failed. Runs go to the given instance, so the Dagster UI shows them afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.core.workspace import load_definitions, mesh_resources
from dagster_project.lake.landing import landing_files
from dagster_project.products.partitions import first_day, last_day

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
Window = tuple[date, date]


@dataclass
class RefreshReport:
    runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    waves: list[list[str]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # asset → why it did not run

    @property
    def success(self) -> bool:
        return all(r.success for r in self.runs)

    def check_results(self) -> list[dg.AssetCheckEvaluation]:
        return [e for r in self.runs for e in r.get_asset_check_evaluations()]


def landed_window(settings: MeshSettings, contracts: Sequence[Contract]) -> Window | None:
    """First and last day with landing files for any daily product."""
    days = [
        f.day for c in contracts if c.partition_column for f in landing_files(settings, c) if f.day
    ]
    return (min(days), max(days)) if days else None


def plan_waves(assets: Sequence[dg.AssetsDefinition]) -> list[list[dg.AssetsDefinition]]:
    """Group assets into runs: each wave's inputs are done; unpartitioned first, then the
    partitioned assets of one partitions definition together with those of the same
    definition that depend on them (assets of different definitions cannot share a run)."""
    owned = {k for a in assets for k in a.keys}
    deps = {a: {d for d in a.dependency_keys if d in owned} - set(a.keys) for a in assets}
    done: set[dg.AssetKey] = set()
    remaining = list(assets)
    waves = []
    while remaining:
        ready = [a for a in remaining if deps[a] <= done]
        if not ready:
            raise ValueError("dependency cycle among " + ", ".join(str(a.key) for a in remaining))
        flat = [a for a in ready if a.partitions_def is None]
        wave = flat or _partitioned_closure(ready, remaining, deps, done)
        waves.append(wave)
        done |= {k for a in wave for k in a.keys}
        remaining = [a for a in remaining if a not in wave]
    return waves


def _partitioned_closure(ready, remaining, deps, done) -> list[dg.AssetsDefinition]:
    partitions = ready[0].partitions_def
    wave = [a for a in ready if a.partitions_def == partitions]
    keys = done | {k for a in wave for k in a.keys}
    grew = True
    while grew:
        grew = False
        for a in remaining:
            if a not in wave and a.partitions_def == partitions and deps[a] <= keys:
                wave.append(a)
                keys |= set(a.keys)
                grew = True
    return wave


def days_for(partitions: dg.PartitionsDefinition, window: Window | None) -> Window | None:
    """The part of `window` that `partitions` has (None: no day of it)."""
    last = last_day(partitions)
    if window is None or last is None:
        return None
    start, end = max(window[0], first_day(partitions)), min(window[1], last)
    return (start, end) if start <= end else None


def refresh(
    assets: Sequence[dg.AssetsDefinition],
    contracts: Sequence[Contract],
    *,
    settings: MeshSettings,
    instance: dg.DagsterInstance | None = None,
    on_wave: Callable[[list[str]], None] | None = None,
    on_done: Callable[[list[str], dg.ExecuteInProcessResult | None], None] | None = None,
    resources: Mapping[str, Any] | None = None,
    window: Window | None = None,
) -> RefreshReport:
    """Materialize every asset once, daily ones over `window` (default: every landed
    day), with the locations' `resources` (default: those of the workspace's locations).
    `on_done` gets None for a wave that had no day to run."""
    window = window or landed_window(settings, contracts)
    if MeshSettings().home != settings.home:  # the locations' resources read MESH_HOME
        raise ValueError(f"MESH_HOME is {MeshSettings().home}, not {settings.home}")
    if resources is None:
        resources = mesh_resources(load_definitions())
    report = RefreshReport()
    for wave in plan_waves(assets):
        names = [k.to_user_string() for a in wave for k in a.keys]
        report.waves.append(names)
        if on_wave:
            on_wave(names)
        tags = {}
        partitions = wave[0].partitions_def
        if partitions is not None:
            days = days_for(partitions, window)
            if days is None:
                report.skipped |= dict.fromkeys(names, _no_days(partitions, window))
                if on_done:
                    on_done(names, None)
                continue
            tags = {
                "dagster/asset_partition_range_start": days[0].isoformat(),
                "dagster/asset_partition_range_end": days[1].isoformat(),
            }
        result = dg.materialize(
            wave,
            instance=instance,
            resources=resources,
            tags=tags,
            raise_on_error=False,
            run_config=QUIET,
        )
        report.runs.append(result)
        if on_done:
            on_done(names, result)
    return report


def _no_days(partitions: dg.PartitionsDefinition, window: Window | None) -> str:
    if window is None:
        return "no daily data has landed yet"
    last = last_day(partitions)
    span = f"{first_day(partitions)} .. {last}" if last else f"from {first_day(partitions)}"
    return f"no day of {window[0]} .. {window[1]} is in its partitions ({span})"
