"""Meshwork's self-serve platform: what domains and governance build on.

A domain needs only this:

    from dagster_project import derived, domain_definitions, landing

    defs = domain_definitions("sales", [landing("order_lines"), derived(...)],
                              contracts=Path(__file__).parent / "contracts")
"""

from dagster_project.contracts import Contract, ContractError, load_contract, load_contracts
from dagster_project.locations import automation_sensor, domain_definitions
from dagster_project.narratives import InsightsRun, insights
from dagster_project.products import Product, asset_key, derived, landing
from dagster_project.resources import MeshResource
from dagster_project.settings import MeshSettings, get_settings
from dagster_project.storage import DateWindow, Lake

__all__ = [
    "Contract",
    "ContractError",
    "DateWindow",
    "InsightsRun",
    "Lake",
    "MeshResource",
    "MeshSettings",
    "Product",
    "asset_key",
    "automation_sensor",
    "derived",
    "domain_definitions",
    "get_settings",
    "insights",
    "landing",
    "load_contract",
    "load_contracts",
]
