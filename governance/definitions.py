"""Governance: the mesh-wide catalog and policy scorecard over every domain's products."""

from pathlib import Path

import dagster as dg

from dagster_project import (
    AIResource,
    ContractRegistry,
    Product,
    ProductRun,
    asset_key,
    discover_contracts,
    domain_definitions,
    load_contracts,
)
from governance.audit import refresh_audit
from governance.catalog import build_catalog, build_scorecard
from governance.generative import generative_products
from governance.sharing.products import shared_products

CONTRACTS = Path(__file__).parent / "contracts"
OWN = load_contracts(CONTRACTS)
PRODUCTS = discover_contracts(exclude=("governance",))
PRODUCT_KEYS = [c.key for c in PRODUCTS]


def catalog(run: ProductRun):
    return build_catalog(PRODUCTS, run.lake, run.context.instance)


def policy_scorecard(run: ProductRun):
    frame = build_scorecard(PRODUCTS, ContractRegistry(run.lake.settings), run.lake)
    failing = frame.filter(~frame["passed"])
    run.log.info(f"{failing.height} policy failure(s) across {len(PRODUCTS)} products")
    return frame


def governed(name: str, build, *inputs: str) -> Product:
    return Product(name, build=build, inputs=inputs, kinds=("dagster",))


# Masked copies the Delta Sharing server serves (shares.yaml beside workspace.yaml).
SHARED = shared_products(PRODUCTS)

# Generated docs, semantic index and knowledge graph (governance/generative.py).
GENERATIVE = generative_products(PRODUCT_KEYS)

GOVERNED = [
    governed("catalog", catalog, *PRODUCT_KEYS),
    governed("policy_scorecard", policy_scorecard, *PRODUCT_KEYS),
    # Compacts and checks the log the governed read path appends to (governance/audit.py).
    governed("access_audit", refresh_audit, *(p.contract.key for p in SHARED)),
]

governance_refresh = dg.ScheduleDefinition(
    name="governance_daily_refresh",
    cron_schedule="0 6 * * *",
    target=dg.AssetSelection.assets(
        *(asset_key(f"governance/{p.name}") for p in [*GOVERNED, *GENERATIVE])
    ),
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = domain_definitions(
    "governance",
    [*GOVERNED, *GENERATIVE, *SHARED],
    contracts=CONTRACTS,
    schedules=[governance_refresh],
    resources={"ai": AIResource()},
)
