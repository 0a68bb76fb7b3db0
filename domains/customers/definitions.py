"""Customers: loyalty profiles land daily; segments are rebuilt from sales' order lines;
the insights say what changed among customers."""

from pathlib import Path

from dagster_project import derived, domain_definitions, insights, landing
from domains.customers.insights import customers_insights
from domains.customers.transforms import customer_segments

SEGMENTS = "customers/customer_segments"

defs = domain_definitions(
    "customers",
    [
        landing("customer_profiles"),
        derived("customer_segments", customer_segments, "sales/order_lines", cron="0 5 * * *"),
        # Customers, tiers and segments now against 28 days before, what checks warn of.
        insights(customers_insights, SEGMENTS, "customers/customer_profiles", "sales/order_lines"),
    ],
    contracts=Path(__file__).parent / "contracts",
)
