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

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.core.workspace import (
    load_definitions,
    mesh_assets,
    mesh_resources,
    read_workspace,
)
from dagster_project.lake.landing import LandingFile, landing_files, load_record
from dagster_project.lake.storage import Lake
from dagster_project.products.builder import SOURCE_TAG
from dagster_project.products.partitions import first_day, last_day

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
SILENT = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
Window = tuple[date, date]
_ERROR_CLASS = re.compile(r"^[\w.]+(Error|Failure|Exception): ")  # "dagster...Failure: why"


@dataclass
class RefreshReport:
    runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    waves: list[list[str]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # asset → why it did not run
    current: set[str] = field(default_factory=set)  # daily assets with no day to rebuild

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
    (empty when none are daily) or why it is skipped (nothing it is built from landed);
    `current`: daily assets an incremental refresh leaves as they are (every day built)."""

    days: dict[dg.AssetKey, frozenset[date]]
    skipped: dict[dg.AssetKey, str]
    current: frozenset[dg.AssetKey] = frozenset()


UP_TO_DATE = "up to date"
BuiltDays = Callable[[dg.AssetKey], frozenset[date]]


def built_days(instance: dg.DagsterInstance, lake: Lake) -> BuiltDays:
    """The days of an asset the instance has materialized (none while its table is
    missing: a lake wiped under a kept instance is built again)."""

    def days(key: dg.AssetKey) -> frozenset[date]:
        if not lake.exists("/".join(key.path)):
            return frozenset()
        found = set()
        for partition in instance.get_materialized_partitions(key):
            try:
                found.add(date.fromisoformat(partition))
            except ValueError:  # not a daily partition key
                continue
        return frozenset(found)

    return days


def _changed_days(settings: MeshSettings, contract: Contract, files: Sequence[LandingFile]):
    """Days of files not loaded as they are now: new, or changed since their load."""
    return frozenset(
        f.day
        for f in files
        if f.day and load_record(settings, contract, f.name).get("signature") != f.signature
    )


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
    assets: Sequence[dg.AssetsDefinition],
    contracts: Sequence[Contract],
    settings: MeshSettings,
    built: BuiltDays | None = None,
) -> Plan:
    """Each asset's days: those landed for the landing products it is built from (so a
    domain with 2009's data and one with 2025's each run over their own days); an asset
    built only from landing products with nothing landed yet, and with no table from an
    earlier refresh, is skipped rather than failed. With `built` (incremental), only the
    days whose files are new or changed, and the days not built yet."""
    by_key = {dg.AssetKey(c.key.split("/")): c for c in contracts}
    landing = _landing_keys(assets)
    landed: dict[dg.AssetKey, frozenset[date]] = {}
    changed: dict[dg.AssetKey, frozenset[date]] = {}
    empty: set[dg.AssetKey] = set()
    lake = Lake(settings)
    undated: dict[dg.AssetKey, str] = {}
    for key in landing:
        contract = by_key.get(key)
        files = landing_files(settings, contract) if contract else []
        daily = contract is not None and contract.partition_column is not None
        landed[key] = frozenset(f.day for f in files if f.day and daily)
        changed[key] = _changed_days(settings, contract, files) if daily else frozenset()
        if not files and not (contract and lake.exists(contract.key)):
            empty.add(key)
        elif daily and files and not landed[key]:
            undated[key] = _undated(contract, files)
    days: dict[dg.AssetKey, frozenset[date]] = {}
    skipped = _missing_inputs(assets, lake)
    for key, up in _ancestors(assets).items():
        if key in skipped:
            continue
        if key in undated or up & undated.keys():
            source = key if key in undated else min(up & undated.keys())
            own = key == source
            skipped[key] = (
                undated[source] if own else f"{source.to_user_string()}: {undated[source]}"
            )
            continue
        sources = up & landing
        if sources and sources <= empty:
            names = ", ".join(sorted(k.to_user_string() for k in sources))
            skipped[key] = f"nothing landed for {names}"
            continue
        days[key] = frozenset().union(*(landed[k] for k in sources))
    current: set[dg.AssetKey] = set()
    if built is not None:
        daily = {k for a in assets if a.partitions_def is not None for k in a.keys}
        for key, up in _ancestors(assets).items():
            if key not in days or key not in daily or not days[key]:
                continue
            new = frozenset().union(*(changed[k] for k in up & landing))
            days[key] = (new | (days[key] - built(key))) & days[key]
            if not days[key]:
                current.add(key)
        running = frozenset().union(*days.values())
        for key in daily - current:  # daily assets built from no landing product
            if key in days and not days[key] and not running:
                current.add(key)
    return Plan(days, skipped, frozenset(current))


def _undated(contract: Contract, files: Sequence[LandingFile]) -> str:
    """Why a daily product's files cannot be loaded: their names carry no day."""
    names = sorted(f.name for f in files)
    return (
        f"{len(files)} landing file(s) carry no day in their name ({', '.join(names[:3])}"
        f"{', ...' if len(names) > 3 else ''}); a daily product's files are named by the day "
        f"they hold, e.g. 2025-03-01.csv or {contract.product}_2025-03-01.csv"
    )


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
    run_config: Mapping[str, Any] = QUIET,
    incremental: bool = False,
) -> RefreshReport:
    """Materialize every asset once, daily ones over `window` (default: every landed
    day, in stretches: see `spans`), with the locations' `resources` (default: those of
    the workspace's locations). Assets with nothing to build from are skipped, saying
    why. `on_done` gets None for a run that had no day to run; `run_config` sets the
    console log level (SILENT: the caller reports failures itself). `incremental`
    (with no `window`): daily assets run only over days whose landing files are new or
    changed, or that `instance` has not materialized; the others are up to date."""
    if MeshSettings().home != settings.home:  # the locations' resources read MESH_HOME
        raise ValueError(f"MESH_HOME is {MeshSettings().home}, not {settings.home}")
    if resources is None:
        resources = mesh_resources(load_definitions())
    lake = Lake(settings)
    built = built_days(instance, lake) if incremental and instance and not window else None
    plan = plan_data(assets, contracts, settings, built)
    landed = window or landed_window(settings, contracts)
    fallback = [landed] if landed else []
    if built is not None:  # daily assets built from no landing product: the days that run
        fallback = spans(frozenset().union(*plan.days.values()))
    report = RefreshReport(
        skipped={k.to_user_string(): r for k, r in plan.skipped.items()},
        current={k.to_user_string() for k in plan.current},
    )
    ran: set[str] = set()
    unrun: dict[str, str] = {}  # asset → why a stretch of its days did not run
    left_out = set(plan.skipped) | plan.current
    for wave in plan_waves([a for a in assets if not set(a.keys) & left_out]):
        for group, span in _runs(wave, plan, fallback):
            names = [k.to_user_string() for a in group for k in a.keys]
            tags = {}
            if span is not None:
                partitions = group[0].partitions_def
                clipped = _clip(span, window)
                days = days_for(partitions, clipped)
                if days is None:
                    # a stretch outside the asked-for days is not this refresh's work
                    reason = (
                        _no_days(partitions, clipped)
                        if clipped
                        else f"none of its landed days is in {window[0]} .. {window[1]}"
                    )
                    unrun |= {n: reason for n in names if n not in unrun}
                    if on_done:
                        on_done(names, None)
                    continue
                tags = {
                    "dagster/asset_partition_range_start": days[0].isoformat(),
                    "dagster/asset_partition_range_end": days[1].isoformat(),
                }
            report.waves.append(names)
            ran |= set(names)
            if on_wave:
                on_wave(names)
            result = dg.materialize(
                group,
                instance=instance,
                resources=resources,
                tags=tags,
                raise_on_error=False,
                run_config=dict(run_config),
            )
            report.runs.append(result)
            if on_done:
                on_done(names, result)
    report.skipped |= {name: why for name, why in unrun.items() if name not in ran}
    return report


def _clip(span: Span, window: Window | None) -> Window | None:
    """A stretch of landed days within the asked-for window (None: none of it)."""
    if window is None:
        return span
    start, end = max(span[0], window[0]), min(span[1], window[1])
    return (start, end) if start <= end else None


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


def _no_days(partitions: dg.PartitionsDefinition, window: Window | None) -> str:
    if window is None:
        return "no daily data has landed yet"
    last = last_day(partitions)
    span = f"{first_day(partitions)} .. {last}" if last else f"from {first_day(partitions)}"
    return f"no day of {window[0]} .. {window[1]} is in its partitions ({span})"


class SelectionError(ValueError):
    """A location or product to refresh that the mesh does not have (the message says
    what it does have)."""


@dataclass
class Selection:
    """What one `mesh refresh` runs: the assets and the resources of their locations."""

    assets: list[dg.AssetsDefinition]
    resources: dict[str, Any]


def select(location: str | None = None, products: Sequence[str] = ()) -> Selection:
    """The assets of one location (or all) and, with `products` (`domain/product`, or a
    product's own name when that is unambiguous), only those."""
    locations = {loc.name: loc for loc in read_workspace()}
    if location is not None and location not in locations:
        raise SelectionError(_unknown("location", location, list(locations), "workspace.yaml"))
    chosen = [locations[location]] if location else list(locations.values())
    definitions = {loc.name: loc.load() for loc in chosen}
    assets = mesh_assets(definitions)
    if products:
        assets = _only(assets, products, location)
    return Selection(assets, mesh_resources(definitions))


def _only(
    assets: list[dg.AssetsDefinition], products: Sequence[str], location: str | None
) -> list[dg.AssetsDefinition]:
    by_key = {k.to_user_string(): a for a in assets for k in a.keys}
    wanted: dict[str, dg.AssetsDefinition] = {}
    for name in products:
        keys = [name] if name in by_key else [k for k in by_key if k.split("/")[-1] == name]
        if len(keys) > 1:
            raise SelectionError(f"{name!r} is ambiguous: {', '.join(keys)}; give domain/product")
        if not keys:
            where = f"location {location}" if location else "the mesh"
            raise SelectionError(_unknown("product", name, list(by_key), where))
        wanted[keys[0]] = by_key[keys[0]]
    return list(dict.fromkeys(wanted.values()))


def _unknown(what: str, name: str, known: list[str], where: str) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    short = difflib.get_close_matches(name, [k.split("/")[-1] for k in known], n=3, cutoff=0.6)
    close += [k for k in known if k.split("/")[-1] in short and k not in close]
    hint = f"did you mean {', '.join(close[:3])}?" if close else f"known: {', '.join(known)}"
    return f"no {what} {name!r} in {where}; {hint}"


@dataclass(frozen=True)
class Outcome:
    """One asset's part in a refresh, for the summary table."""

    asset: str
    kind: str
    status: str  # ok, failed, or "skipped: <why>"
    rows: int | None = None
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    blocking_failed: int = 0
    seconds: float | None = None
    notes: tuple[str, ...] = ()  # why it failed, failed checks, quarantined files

    @property
    def ok(self) -> bool:
        return self.status != "failed" and not self.blocking_failed


def outcomes(report: RefreshReport, assets: Sequence[dg.AssetsDefinition]) -> list[Outcome]:
    """Per asset: whether it was built, its rows, its checks (passed, failed, not judged;
    failed blocking ones apart) and the seconds its step took."""
    seen = {}
    for result in report.runs:
        seen |= _run_facts(result)
    found = []
    for asset in assets:
        for key in asset.keys:
            name, kind = key.to_user_string(), _kind(asset.specs_by_key[key])
            if name in report.skipped:
                found.append(Outcome(name, kind, f"skipped: {report.skipped[name]}"))
                continue
            if name in report.current:
                found.append(Outcome(name, kind, UP_TO_DATE))
                continue
            facts = seen.get((name, asset.op.name)) or _failure(report, asset.op.name)
            found.append(Outcome(name, kind, **facts))
    return found


def _kind(spec: dg.AssetSpec) -> str:
    """A product's kind (landing, derived, built) with its technology beyond Delta and
    polars (duckdb, spark...); another asset's technology (an MLflow model)."""
    source = spec.metadata.get("product_kind")
    extra = ", ".join(sorted(set(spec.kinds) - {"delta", "polars"}))
    if source is None:
        return extra or "asset"
    return f"{source} ({extra})" if extra else str(source)


def _failure(report: RefreshReport, step: str) -> dict[str, Any]:
    """A step without a materialization: the first line of its error, if it ran."""
    for result in report.runs:
        for event in result.get_step_failure_events():
            if event.step_key == step:
                error = event.event_specific_data.error
                first = (error.cause or error).message.strip().splitlines()[0]
                return {"status": "failed", "notes": (_ERROR_CLASS.sub("", first),)}
    return {"status": "failed", "notes": ("not run: an input failed",)}


def _run_facts(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dict[str, Any]]:
    seconds = {
        e.step_key: e.event_specific_data.duration_ms / 1000
        for e in result.get_step_success_events()
    }
    checks: dict[str, list[dg.AssetCheckEvaluation]] = {}
    for e in result.get_asset_check_evaluations():
        checks.setdefault(e.asset_key.to_user_string(), []).append(e)
    facts = {}
    for event in result.get_asset_materialization_events():
        name = event.asset_key.to_user_string()
        rows = event.materialization.metadata.get("dagster/row_count")
        judged = checks.get(name, [])
        not_judged = [e for e in judged if "skipped" in e.metadata]
        failed = [e for e in judged if not e.passed and e not in not_judged]
        blocking = [e for e in failed if e.severity == dg.AssetCheckSeverity.ERROR]
        notes = [f"{e.check_name}: {e.description or 'failed'}" for e in failed]
        notes += _landing_notes(event.materialization.metadata)
        facts[(name, event.step_key)] = {
            "status": "ok",
            "rows": rows.value if rows is not None else None,
            "passed": sum(e.passed for e in judged),
            "failed": len(failed),
            "skipped": len(not_judged),
            "blocking_failed": len(blocking),
            "seconds": seconds.get(event.step_key),
            "notes": tuple(notes),
        }
    return facts


# The landing files a run did not load as they were, and what a summary calls them.
_LANDING_NOTES = {
    "quarantined": "quarantined",
    "rows_quarantined": "rows set aside from",
    "replays": "skipped as replays",
}


def _landing_notes(metadata: Mapping[str, Any]) -> list[str]:
    """One note per kind of landing file a run set aside or skipped: a replay with the
    file it repeats; a quarantine's reasons (long: every broken rule) are for `mesh
    landing list`."""
    notes = []
    for label, verb in _LANDING_NOTES.items():
        if (files := metadata.get(label)) is None:
            continue
        if label == "replays":
            named = "; ".join(f"{name} ({why})" for name, why in files.value.items())
        else:
            named = f"{', '.join(files.value)} (why: mesh landing list)"
        notes.append(f"{verb}: {named}")
    return notes
