"""Governance: the mesh-wide catalog and policy scorecard over every domain's products."""

from pathlib import Path

import dagster as dg

from dagster_project import MeshResource, asset_key, automation_sensor, load_contracts
from dagster_project.policies import ContractRegistry
from dagster_project.products import product_asset_kwargs, publish
from dagster_project.workspace import discover_contracts
from governance.catalog import build_catalog, build_scorecard

OWN = load_contracts(Path(__file__).parent / "contracts")
PRODUCTS = discover_contracts(exclude=("governance",))
PRODUCT_KEYS = [asset_key(c.key) for c in PRODUCTS]


def _governed(contract_name: str) -> dict:
    kwargs = product_asset_kwargs(OWN[contract_name])
    kwargs["kinds"] = {"delta", "polars", "dagster"}
    return {**kwargs, "deps": PRODUCT_KEYS}


@dg.asset(**_governed("catalog"))
def catalog(context: dg.AssetExecutionContext, mesh: MeshResource) -> dg.MaterializeResult:
    frame = build_catalog(PRODUCTS, mesh.lake, context.instance)
    return publish(context, mesh.lake, OWN["catalog"], frame)


@dg.asset(**_governed("policy_scorecard"))
def policy_scorecard(context: dg.AssetExecutionContext, mesh: MeshResource) -> dg.MaterializeResult:
    frame = build_scorecard(PRODUCTS, ContractRegistry(mesh.settings))
    failing = frame.filter(~frame["passed"])
    context.log.info(f"{failing.height} policy failure(s) across {len(PRODUCTS)} products")
    return publish(context, mesh.lake, OWN["policy_scorecard"], frame)


governance_refresh = dg.ScheduleDefinition(
    name="governance_daily_refresh",
    cron_schedule="0 6 * * *",
    target=dg.AssetSelection.assets(catalog, policy_scorecard),
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(
    assets=[catalog, policy_scorecard, *[dg.AssetSpec(k) for k in PRODUCT_KEYS]],
    schedules=[governance_refresh],
    sensors=[automation_sensor("governance_automation")],
    resources={"mesh": MeshResource()},
)
