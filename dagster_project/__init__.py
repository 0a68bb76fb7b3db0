"""Meshwork's self-serve platform: what domains and governance build on.

A domain needs only this:

    from dagster_project import derived, domain_definitions, landing

    defs = domain_definitions("sales", [landing("order_lines"), derived(...)],
                              contracts=Path(__file__).parent / "contracts")
"""

from dagster_project.ask.narratives import InsightsRun, insights
from dagster_project.assembly.locations import automation_sensor, domain_definitions
from dagster_project.core.contracts import Contract, ContractError, load_contract, load_contracts
from dagster_project.core.settings import MeshSettings, get_settings
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import DateWindow, Lake
from dagster_project.products.builder import Product, asset_key, derived, landing

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
