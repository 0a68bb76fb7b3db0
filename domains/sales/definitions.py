"""Sales: stores and order lines land daily; daily sales follow automatically."""

from pathlib import Path

from dagster_project import derived, domain_definitions, landing
from domains.sales.transforms import daily_sales, daily_sales_spark

defs = domain_definitions(
    "sales",
    [
        landing("stores"),
        landing("order_lines"),
        derived("daily_sales", daily_sales, "sales/order_lines", spark=daily_sales_spark),
    ],
    contracts=Path(__file__).parent / "contracts",
)
