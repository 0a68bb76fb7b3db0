"""Refresh the whole mesh in-process, in dependency order (used by `mesh demo`, the
end-to-end tests and the refresh benchmark).

Assets run in as few Dagster runs as partitioning allows: unpartitioned products whose
inputs are ready, then all daily products over the landed days in one run (single-run
backfill), and so on until every asset of every location has been materialized and
checked. Runs go to the given instance, so the Dagster UI shows them afterwards.
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

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class RefreshReport:
    runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    waves: list[list[str]] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(r.success for r in self.runs)

    def check_results(self) -> list[dg.AssetCheckEvaluation]:
        return [e for r in self.runs for e in r.get_asset_check_evaluations()]


def landed_window(
    settings: MeshSettings, contracts: Sequence[Contract]
) -> tuple[date, date] | None:
    """First and last day with landing files for any daily product."""
    days = [
        f.day for c in contracts if c.partition_column for f in landing_files(settings, c) if f.day
    ]
    return (min(days), max(days)) if days else None


def plan_waves(assets: Sequence[dg.AssetsDefinition]) -> list[list[dg.AssetsDefinition]]:
    """Group assets into runs: each wave's inputs are done; unpartitioned first, then the
    partitioned assets together with the partitioned ones that depend on them."""
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
    wave = list(ready)
    keys = done | {k for a in wave for k in a.keys}
    grew = True
    while grew:
        grew = False
        for a in remaining:
            if a not in wave and a.partitions_def is not None and deps[a] <= keys:
                wave.append(a)
                keys |= set(a.keys)
                grew = True
    return wave


def refresh(
    assets: Sequence[dg.AssetsDefinition],
    contracts: Sequence[Contract],
    *,
    settings: MeshSettings,
    instance: dg.DagsterInstance | None = None,
    on_wave: Callable[[list[str]], None] | None = None,
    on_done: Callable[[list[str], dg.ExecuteInProcessResult], None] | None = None,
    resources: Mapping[str, Any] | None = None,
) -> RefreshReport:
    """Materialize every asset once, over every landed day, with the locations'
    `resources` (default: those of the workspace's locations)."""
    window = landed_window(settings, contracts)
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
        if any(a.partitions_def is not None for a in wave):
            if window is None:
                continue  # no daily data has landed yet
            tags = {
                "dagster/asset_partition_range_start": window[0].isoformat(),
                "dagster/asset_partition_range_end": window[1].isoformat(),
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
