"""Building a domain's code location from its contracts and products."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from dagster_project.assembly.sensors import landing_sensor
from dagster_project.checks.alerting import check_alert_sensor
from dagster_project.checks.quality.companions import companion_assets
from dagster_project.core.contracts import ContractError, load_contracts
from dagster_project.engines.spark_resource import SparkResource
from dagster_project.lake.resource import MeshResource
from dagster_project.ml.synthetic_product import synthetic_assets
from dagster_project.products.builder import Product, asset_key, build_product_asset


def automation_sensor(name: str) -> dg.AutomationConditionSensorDefinition:
    """Evaluates the location's automation conditions; RUNNING from the start (Dagster's
    default sensor starts STOPPED)."""
    return dg.AutomationConditionSensorDefinition(
        name, target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING
    )


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
    """A domain's Definitions: one asset per product (from its contract in `contracts/`),
    specs for inputs owned by other domains, the landing sensor, the automation sensor
    and a schedule per product that asks for one. `assets`, `sensors`, `schedules`, `jobs`
    and `resources` add the domain's own (e.g. a model-training asset and its resource)."""
    found = load_contracts(contracts)
    missing = [p.name for p in products if p.name not in found]
    if missing:
        raise ContractError(contracts, "(folder)", f"no contract for product(s) {missing}")
    built = [build_product_asset(found[p.name], p) for p in products]
    built += synthetic_assets([found[p.name] for p in products])  # contracts that opt in
    built += companion_assets(found[p.name] for p in products)  # <product>_anomalies
    foreign = sorted({k for p in products for k in p.inputs if not k.startswith(f"{domain}/")})
    foreign += _foreign_deps(domain, assets, known=set(foreign))
    landing = [found[p.name] for p in products if p.from_landing]
    scheduled = [
        dg.ScheduleDefinition(
            name=f"{domain}_{p.name}_refresh",
            cron_schedule=p.cron,
            target=dg.AssetSelection.assets(asset_key(f"{domain}/{p.name}")),
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
        for p in products
        if p.cron
    ]
    return dg.Definitions(
        assets=[*built, *[dg.AssetSpec(asset_key(k)) for k in foreign], *assets],
        sensors=[
            *([landing_sensor(domain, landing)] if landing else []),
            automation_sensor(f"{domain}_automation"),
            check_alert_sensor(f"{domain}_check_alerts"),
            *sensors,
        ],
        schedules=[*scheduled, *schedules],
        jobs=list(jobs),
        # `spark`: used only by products whose contract says `engine: spark`.
        resources={"mesh": MeshResource(), "spark": SparkResource(), **(resources or {})},
    )
