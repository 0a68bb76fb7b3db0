"""Customers: loyalty profiles land daily; segments are rebuilt from sales' order lines."""

from pathlib import Path

from dagster_project import derived, domain_definitions, landing
from domains.customers.transforms import customer_segments

defs = domain_definitions(
    "customers",
    [
        landing("customer_profiles"),
        derived("customer_segments", customer_segments, "sales/order_lines", cron="0 5 * * *"),
    ],
    contracts=Path(__file__).parent / "contracts",
)
