"""Refresh the whole mesh in-process, in dependency order (used by `mesh demo`, the
end-to-end tests and the refresh benchmark).

Assets run in as few Dagster runs as partitioning allows: unpartitioned products whose
inputs are ready, then all daily products over the landed days in one run (single-run
backfill), and so on until every asset of every location has been materialized and
checked. Runs go to the given instance, so the Dagster UI shows them afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.core.workspace import load_definitions, mesh_resources
from dagster_project.lake.landing import landing_files
from dagster_project.lake.storage import Lake
from dagster_project.products.builder import SOURCE_TAG

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class RefreshReport:
    runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    waves: list[list[str]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # asset -> why it did not run

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


def _landing_keys(assets: Sequence[dg.AssetsDefinition]) -> set[dg.AssetKey]:
    return {
        k for a in assets for k in a.keys if a.tags_by_key.get(k, {}).get(SOURCE_TAG) == "landing"
    }


def _ancestors(assets: Sequence[dg.AssetsDefinition]) -> dict[dg.AssetKey, set[dg.AssetKey]]:
    """Every asset's upstream keys among `assets`, transitively, itself included."""
    deps = {k: set(a.asset_deps.get(k, ())) for a in assets for k in a.keys}
    found: dict[dg.AssetKey, set[dg.AssetKey]] = {}

    def visit(key: dg.AssetKey, path: frozenset) -> set[dg.AssetKey]:
        if key not in found:
            up = {key}
            for dep in deps.get(key, ()):
                if dep in deps and dep not in path:
                    up |= visit(dep, path | {key})
            found[key] = up
        return found[key]

    for key in deps:
        visit(key, frozenset())
    return found


# Landed days more than four weeks apart are refreshed in separate runs: a run over a range
# records every day of it, so a weekly show's 13 years are 14 runs of a season each, not
# one run of 4,800 mostly empty days.
GAP_DAYS = 28

Span = tuple[date, date]


def spans(days: Iterable[date], gap: int = GAP_DAYS) -> list[Span]:
    """Sorted days as stretches whose neighbours are at most `gap` days apart."""
    found: list[list[date]] = []
    for day in sorted(set(days)):
        if found and (day - found[-1][1]).days <= gap:
            found[-1][1] = day
        else:
            found.append([day, day])
    return [(a, b) for a, b in found]


@dataclass(frozen=True)
class Plan:
    """What a refresh runs for each asset: the days landed for what it is built from
    (empty when none are daily) or why it is skipped (nothing it is built from landed)."""

    days: dict[dg.AssetKey, frozenset[date]]
    skipped: dict[dg.AssetKey, str]


def _missing_inputs(assets: Sequence[dg.AssetsDefinition], lake: Lake) -> dict[dg.AssetKey, str]:
    """Assets whose every input lies outside this refresh and was never built (e.g.
    governance's shared copy of a product of a domain not refreshed here)."""
    owned = {k for a in assets for k in a.keys}
    skipped = {}
    for a in assets:
        for key in a.keys:
            inputs = set(a.asset_deps.get(key, ())) - owned
            outside = inputs == set(a.asset_deps.get(key, ())) and inputs
            if outside and not any(lake.exists("/".join(i.path)) for i in inputs):
                names = ", ".join(sorted(i.to_user_string() for i in inputs))
                skipped[key] = f"its input(s) {names} are not built and not in this refresh"
    return skipped


def plan_data(
    assets: Sequence[dg.AssetsDefinition], contracts: Sequence[Contract], settings: MeshSettings
) -> Plan:
    """Each asset's days: those landed for the landing products it is built from (so a
    domain with 2009's data and one with 2025's each run over their own days); an asset
    built only from landing products with nothing landed yet, and with no table from an
    earlier refresh, is skipped rather than failed."""
    by_key = {dg.AssetKey(c.key.split("/")): c for c in contracts}
    landing = _landing_keys(assets)
    landed: dict[dg.AssetKey, frozenset[date]] = {}
    empty: set[dg.AssetKey] = set()
    lake = Lake(settings)
    for key in landing:
        contract = by_key.get(key)
        files = landing_files(settings, contract) if contract else []
        daily = contract is not None and contract.partition_column is not None
        landed[key] = frozenset(f.day for f in files if f.day and daily)
        if not files and not (contract and lake.exists(contract.key)):
            empty.add(key)
    days: dict[dg.AssetKey, frozenset[date]] = {}
    skipped = _missing_inputs(assets, lake)
    for key, up in _ancestors(assets).items():
        if key in skipped:
            continue
        sources = up & landing
        if sources and sources <= empty:
            names = ", ".join(sorted(k.to_user_string() for k in sources))
            skipped[key] = f"nothing landed for {names}"
            continue
        days[key] = frozenset().union(*(landed[k] for k in sources))
    return Plan(days, skipped)


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
    if MeshSettings().home != settings.home:  # the locations' resources read MESH_HOME
        raise ValueError(f"MESH_HOME is {MeshSettings().home}, not {settings.home}")
    if resources is None:
        resources = mesh_resources(load_definitions())
    plan = plan_data(assets, contracts, settings)
    window = landed_window(settings, contracts)
    fallback = [window] if window else []
    report = RefreshReport(skipped={k.to_user_string(): r for k, r in plan.skipped.items()})
    for wave in plan_waves([a for a in assets if not set(a.keys) & set(plan.skipped)]):
        for group, window in _runs(wave, plan, fallback):
            names = [k.to_user_string() for a in group for k in a.keys]
            report.waves.append(names)
            if on_wave:
                on_wave(names)
            tags = {}
            if window is not None:
                tags = {
                    "dagster/asset_partition_range_start": window[0].isoformat(),
                    "dagster/asset_partition_range_end": window[1].isoformat(),
                }
            result = dg.materialize(
                group,
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


def _days(asset: dg.AssetsDefinition, plan: Plan) -> frozenset[date]:
    return frozenset().union(*(plan.days.get(k, frozenset()) for k in asset.keys))


def _runs(
    wave: list[dg.AssetsDefinition], plan: Plan, fallback: list[Span]
) -> list[tuple[list[dg.AssetsDefinition], Span | None]]:
    """A wave as Dagster runs: one per partitions definition and stretch of landed days
    (a run's assets share both), upstream runs first; daily assets with no landed day
    are left out."""
    if all(a.partitions_def is None for a in wave):
        return [(wave, None)]
    groups: dict[tuple, list[dg.AssetsDefinition]] = {}
    by_def: dict[dg.PartitionsDefinition, list[dg.AssetsDefinition]] = {}
    for a in wave:
        by_def.setdefault(a.partitions_def, []).append(a)
    for partitions, members in by_def.items():
        days = {a: _days(a, plan) for a in members}
        for span in spans(frozenset().union(*days.values())):
            inside = [a for a in members if any(span[0] <= d <= span[1] for d in days[a])]
            groups[(partitions, span)] = inside
        for span in fallback:  # daily assets built from no landing product
            without = [a for a in members if not days[a]]
            if without:
                groups.setdefault((partitions, span), []).extend(without)
    ordered = []
    pending = sorted(groups.items(), key=lambda item: item[0][1])
    while pending:
        inside = {k for _, g in pending for a in g for k in a.keys}
        for i, ((_, span), group) in enumerate(pending):
            own = {k for a in group for k in a.keys}
            needs = {d for a in group for d in a.dependency_keys} - own
            if not (needs & inside) or i == len(pending) - 1:
                ordered.append((group, span))
                pending.pop(i)
                break
    return ordered
