"""A small, hand-computable retail mesh written through the lake API with the demo
contracts: 4 stores, 6 products, 5 customers, 3 days of orders and stock counts."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl

from dagster_project.core.contracts import Contract
from dagster_project.lake.storage import Lake

DAYS = [date(2025, 3, 1), date(2025, 3, 2), date(2025, 4, 1)]


def frames() -> dict[str, pl.DataFrame]:
    stores = pl.DataFrame(
        {
            "store_id": [1, 2, 3, 4],
            "store_name": ["Harbour", "Old Town", "Mill's Yard", "Airport"],
            "city": ["Porto", "Lyon", "Leeds", "Porto"],
            "region": ["North", "South", "East", "North"],
            "opened_date": [date(2019, 1, 1)] * 4,
            "size_sqm": [500.0, 300.0, 250.0, 120.0],
        }
    )
    products = pl.DataFrame(
        {
            "product_id": list(range(1, 7)),
            "sku": [f"SKU-{i:03d}" for i in range(1, 7)],
            "product_name": ["Tea", "Coffee", "Soap", "Towel", "Bread", "Milk"],
            "category": ["grocery", "grocery", "home", "home", "bakery", "dairy"],
            "brand": ["Acme", "Acme", "Clean Co", "Clean Co", "Baker", "Farm"],
            "unit_cost": [1.0, 2.0, 0.5, 4.0, 0.8, 0.6],
            "list_price": [2.0, 4.0, 1.5, 9.0, 1.6, 1.2],
            "supplier_id": [10, 10, 20, 20, 30, 30],
            "lead_time_days": [3, 3, 7, 7, 1, 2],
        }
    )
    customers = pl.DataFrame(
        {
            "customer_id": [100, 101, 102, 103, 104],
            "full_name": [
                "Ada Lovelace",
                "Alan Turing",
                "Grace Hopper",
                "Edsger Dijkstra",
                "Anita Borg",
            ],
            "email": [f"person{i}@secret.example" for i in range(5)],
            "phone": [f"+44 7000 00000{i}" for i in range(5)],
            "birth_date": [date(1980, 1, 1 + i) for i in range(5)],
            "city": ["Porto", "Lyon", "Leeds", "Porto", "Paris"],
            "country": ["PT", "FR", "GB", "PT", "FR"],
            "signup_date": [date(2024, 1, 1)] * 5,
            "loyalty_tier": ["gold", "silver", "bronze", "platinum", "gold"],
            "marketing_opt_in": [True, False, True, True, False],
        }
    )
    lines = []
    order_id = 1
    for day_index, day in enumerate(DAYS):
        for store_id in (1, 2, 3, 4):
            customer = 100 + (store_id + day_index) % 5
            for line_number, product_id in enumerate((store_id, store_id + 1), start=1):
                quantity = 1 + (order_id + line_number) % 3
                price = float(products["list_price"][product_id - 1])
                discount = 0.1 if (store_id == 2 and line_number == 1) else 0.0
                lines.append(
                    {
                        "order_id": order_id,
                        "line_number": line_number,
                        "order_ts": datetime.combine(day, datetime.min.time())
                        + timedelta(hours=9 + store_id),
                        "order_date": day,
                        "store_id": store_id,
                        "customer_id": customer,
                        "product_id": product_id,
                        "channel": "online" if store_id == 4 else "store",
                        "quantity": quantity,
                        "unit_price": price,
                        "discount": discount,
                        "net_amount": round(quantity * price * (1 - discount), 2),
                        "payment_type": "card" if order_id % 2 else "cash",
                    }
                )
            order_id += 1
    order_lines = pl.DataFrame(lines)
    stock = pl.DataFrame(
        [
            {
                "snapshot_date": day,
                "store_id": store_id,
                "product_id": product_id,
                "on_hand": 10 * store_id + product_id + day_index,
                "on_order": product_id,
            }
            for day_index, day in enumerate(DAYS)
            for store_id in (1, 2, 3, 4)
            for product_id in range(1, 7)
        ]
    )
    segments = pl.DataFrame(
        {
            "customer_id": [100, 101, 102, 103, 104],
            "recency_days": [1, 2, 3, 40, 31],
            "frequency": [3, 2, 2, 3, 2],
            "monetary": [30.0, 20.0, 15.5, 44.0, 12.0],
            "rfm_segment": ["champions", "loyal", "potential", "at_risk", "hibernating"],
            "lifetime_value": [300.0, 200.0, 150.0, 440.0, 120.0],
        }
    )
    daily = order_lines.group_by("order_date", "store_id", "product_id").agg(
        units=pl.col("quantity").sum(),
        net_revenue=pl.col("net_amount").sum().round(2),
        order_count=pl.col("order_id").n_unique(),
    )
    return {
        "sales/stores": stores,
        "sales/order_lines": order_lines,
        "sales/daily_sales": daily,
        "inventory/products": products,
        "inventory/stock_levels": stock,
        "customers/customer_profiles": customers,
        "customers/customer_segments": segments,
    }


def write_small_mesh(lake: Lake, contracts: dict[str, Contract]) -> dict[str, pl.DataFrame]:
    """Write every small frame as its product; returns the frames by key."""
    data = frames()
    for key, frame in data.items():
        lake.write(contracts[key], frame)
    return data
