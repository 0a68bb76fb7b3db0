"""Building a domain's code location from its contracts and products."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.assembly.sensors import landing_sensor
from dagster_project.checks.alerting import check_alert_sensor
from dagster_project.checks.families import FAMILIES
from dagster_project.checks.quality.companions import companion_products, discover_contracts
from dagster_project.core.contracts import Contract, ContractError, load_contracts
from dagster_project.core.settings import Settings, get_settings
from dagster_project.engines.spark_resource import SparkResource
from dagster_project.lake.resource import MeshResource
from dagster_project.ml.synthetic_product import synthetic_products
from dagster_project.products.builder import build_product_asset
from dagster_project.products.partitions import partition_starts
from dagster_project.products.product import Product, asset_key, qualified


def automation_sensor(name: str) -> dg.AutomationConditionSensorDefinition:
    """Evaluates the location's automation conditions every MESH_AUTOMATION_INTERVAL
    seconds; RUNNING from the start (Dagster's default sensor starts STOPPED)."""
    return dg.AutomationConditionSensorDefinition(
        name,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=Settings.from_env().automation_interval,
    )


def followers(
    pairs: Sequence[tuple[Product, Contract]], starts: Mapping[str, date]
) -> dict[str, list[str]]:
    """For each landing product, the derived daily products of the location downstream of
    it (transitively, in dependency order) with the same first day: its landing run
    materializes them too, so a landed day does not wait for an automation tick and a
    second run per product. Unpartitioned ones are left to automation, which waits for
    their inputs (products.builder.default_automation)."""
    daily = {c.key: p.inputs for p, c in pairs if not p.from_landing and c.key in starts}
    found: dict[str, list[str]] = {}
    for product, contract in pairs:
        if not product.from_landing or contract.key not in starts:
            continue
        chain, reached = [], {contract.key}
        while more := [
            k
            for k, inputs in daily.items()
            if k not in reached and starts[k] == starts[contract.key] and reached & set(inputs)
        ]:
            chain += sorted(more)
            reached.update(more)
        if chain:
            found[contract.key] = chain
    return found


def _foreign_deps(
    domain: str, assets: Sequence[dg.AssetsDefinition | dg.AssetSpec], known: set[str]
) -> list[str]:
    """Other domains' keys the domain's own assets depend on (each needs an AssetSpec
    here), unless the assets declare the spec themselves."""
    own = {k.to_user_string() for a in assets for k in _keys(a)}
    wanted = {
        dep.to_user_string()
        for a in assets
        if isinstance(a, dg.AssetsDefinition)
        for dep in a.dependency_keys
    }
    return sorted(k for k in wanted - own - known if not k.startswith(f"{domain}/"))


def _keys(asset: dg.AssetsDefinition | dg.AssetSpec) -> list[dg.AssetKey]:
    return [asset.key] if isinstance(asset, dg.AssetSpec) else list(asset.keys)


def product_assets(products: Sequence[Product]) -> list[dg.AssetsDefinition]:
    """The assets of products that carry their own contract (generated ones), each with
    every check family: for building a few products outside a location (tests, tools)."""
    pairs = [(p, p.contract) for p in products]
    return _built(pairs, _starts(pairs))


def _starts(pairs: Sequence[tuple[Product, Contract]]) -> dict[str, date]:
    """The first day of each partitioned product (products.partitions)."""
    return partition_starts(pairs, get_settings(), _foreign_contracts())


def _built(
    pairs: Sequence[tuple[Product, Contract]], starts: Mapping[str, date]
) -> list[dg.AssetsDefinition]:
    return [build_product_asset(c, p, FAMILIES, starts.get(c.key)) for p, c in pairs]


def _foreign_contracts() -> Callable[[str], Contract | None]:
    """Finds another location's contract by key, reading the workspace's contracts on
    first use (most locations never need them)."""

    @cache
    def mesh() -> dict[str, Contract]:
        try:
            return {c.key: c for c in discover_contracts()}
        except FileNotFoundError:  # no workspace.yaml: a location built on its own
            return {}

    return lambda key: mesh().get(key)


def domain_definitions(
    domain: str,
    products: Sequence[Product],
    *,
    contracts: Path | str,
    assets: Sequence[dg.AssetsDefinition | dg.AssetSpec] = (),
    sensors: Sequence[dg.SensorDefinition] = (),
    schedules: Sequence[dg.ScheduleDefinition] = (),
    jobs: Sequence[dg.JobDefinition | dg.UnresolvedAssetJobDefinition] = (),
    resources: Mapping[str, Any] | None = None,
) -> dg.Definitions:
    """A domain's Definitions: one asset per product (its contract from `contracts/`, or
    its own for a generated product), with the synthetic and anomalies products their
    contracts ask for, specs for inputs owned by other domains, the landing sensor, the
    automation and check-alert sensors and a schedule per product that asks for one.
    `assets`, `sensors`, `schedules`, `jobs` and `resources` add the domain's own (e.g. a
    model-training asset and its resource)."""
    found = load_contracts(contracts)
    products = [replace(p, inputs=qualified(p.inputs, domain)) for p in products]
    missing = [p.name for p in products if p.contract is None and p.name not in found]
    if missing:
        raise ContractError(contracts, "(folder)", f"no contract for product(s) {missing}")
    pairs = [(p, p.contract or found[p.name]) for p in products]
    own = [c for _, c in pairs]
    extra = [*synthetic_products(own), *companion_products(own)]  # as their contracts ask
    pairs += [(p, p.contract) for p in extra]
    starts = _starts(pairs)
    built = _built(pairs, starts)
    here = {c.key for _, c in pairs}
    inputs = {k for p, _ in pairs for k in p.inputs}
    foreign = sorted(k for k in inputs - here if not k.startswith(f"{domain}/"))
    foreign += _foreign_deps(domain, assets, known=set(foreign) | here)
    landing = [c for p, c in pairs if p.from_landing]
    sensing = dict(
        minimum_interval_seconds=Settings.from_env().landing_interval,
        followers=followers(pairs, starts),
    )
    scheduled = [
        dg.ScheduleDefinition(
            name=f"{domain}_{p.name}_refresh",
            cron_schedule=p.cron,
            target=dg.AssetSelection.assets(asset_key(c.key)),
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
        for p, c in pairs
        if p.cron
    ]
    return dg.Definitions(
        assets=[*built, *[dg.AssetSpec(asset_key(k)) for k in foreign], *assets],
        sensors=[
            *([landing_sensor(domain, landing, starts, **sensing)] if landing else []),
            automation_sensor(f"{domain}_automation"),
            check_alert_sensor(f"{domain}_check_alerts"),
            *sensors,
        ],
        schedules=[*scheduled, *schedules],
        jobs=list(jobs),
        # A run's steps in its own process: the default executor starts a process per step,
        # each importing the location again (seconds per asset on a small machine), for
        # parallelism a run of one day's few assets rarely has. `mesh refresh` and the
        # tests run in-process already.
        executor=dg.in_process_executor,
        # `spark`: used only by products whose contract says `engine: spark`; `duckdb`: by
        # SQL products, a fresh in-memory database per connection.
        resources={
            "mesh": MeshResource(),
            "spark": SparkResource(),
            "duckdb": DuckDBResource(database=":memory:"),
            **(resources or {}),
        },
    )
