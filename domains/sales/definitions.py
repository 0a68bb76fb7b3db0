"""Sales: stores and order lines land daily; daily sales and their insights follow
automatically."""

from pathlib import Path

from dagster_project import derived, domain_definitions, insights, landing
from domains.sales.insights import sales_insights
from domains.sales.transforms import daily_sales, daily_sales_spark

defs = domain_definitions(
    "sales",
    [
        landing("stores"),
        landing("order_lines"),
        derived("daily_sales", daily_sales, "sales/order_lines", spark=daily_sales_spark),
        # What changed in the last 28 days, and what checks warn of; also reports/insights.
        insights(sales_insights, "sales/daily_sales", "sales/stores", "inventory/products"),
    ],
    contracts=Path(__file__).parent / "contracts",
)
