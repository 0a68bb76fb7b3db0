"""Governance: the mesh-wide catalog and policy scorecard over every domain's products."""

from pathlib import Path

import dagster as dg

from dagster_project import MeshResource, asset_key, automation_sensor, load_contracts
from dagster_project.ai import AIResource
from dagster_project.checks.alerting import check_alert_sensor
from dagster_project.checks.policies import ContractRegistry
from dagster_project.core.workspace import discover_contracts
from dagster_project.products.builder import product_asset_kwargs, publish
from governance.audit import refresh_audit
from governance.catalog import build_catalog, build_scorecard
from governance.generative import generative_assets
from governance.sharing.products import shared_product_assets

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
    frame = build_scorecard(PRODUCTS, ContractRegistry(mesh.settings), mesh.lake)
    failing = frame.filter(~frame["passed"])
    context.log.info(f"{failing.height} policy failure(s) across {len(PRODUCTS)} products")
    return publish(context, mesh.lake, OWN["policy_scorecard"], frame)


# Generated docs, semantic index and knowledge graph (governance/generative.py).
GENERATIVE = generative_assets(PRODUCT_KEYS)

# Masked copies the Delta Sharing server serves (governance/sharing/shares.yaml).
SHARED = shared_product_assets(PRODUCTS)


@dg.asset(**{**_governed("access_audit"), "deps": [a.key for a in SHARED]})
def access_audit(context: dg.AssetExecutionContext, mesh: MeshResource) -> dg.MaterializeResult:
    """Compacts and checks the log the governed read path appends to (governance/audit.py)."""
    return refresh_audit(mesh.lake, OWN["access_audit"])


governance_refresh = dg.ScheduleDefinition(
    name="governance_daily_refresh",
    cron_schedule="0 6 * * *",
    target=dg.AssetSelection.assets(catalog, policy_scorecard, access_audit, *GENERATIVE),
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(
    assets=[
        catalog,
        policy_scorecard,
        *GENERATIVE,
        *SHARED,
        access_audit,
        *[dg.AssetSpec(k) for k in PRODUCT_KEYS],
    ],
    schedules=[governance_refresh],
    sensors=[
        automation_sensor("governance_automation"),
        check_alert_sensor("governance_check_alerts"),
    ],
    resources={"mesh": MeshResource(), "ai": AIResource()},
)
