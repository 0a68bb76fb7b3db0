import polars as pl
import pytest

from dagster_project.ask.semantic_sql import (
    SemanticQuery,
    SemanticQueryError,
    assert_read_only,
    compile_query,
    run_query,
)
from dagster_project.metadata.semantics import load_semantic_layer
from tests.small_mesh import write_small_mesh


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer()


@pytest.fixture
def mesh(lake, demo_contracts):
    return write_small_mesh(lake, demo_contracts)


def test_compilation_is_deterministic_and_read_only(layer):
    query = {
        "metrics": ["revenue", "orders"],
        "dimensions": ["region", "channel"],
        "filters": [{"dimension": "category", "op": "in", "value": ["home", "grocery"]}],
        "time_grain": "month",
        "start": "2025-03-01",
        "order_by": ["-revenue"],
        "limit": 5,
    }
    first, second = (
        compile_query(layer, query),
        compile_query(layer, SemanticQuery.from_dict(query)),
    )
    assert first.sql == second.sql
    assert first.columns == ("month", "region", "channel", "revenue", "orders")
    assert set(first.products) == {"sales/order_lines", "sales/stores", "inventory/products"}
    assert "LIMIT 5" in first.sql


def test_revenue_by_region_with_a_string_filter_matches_polars(layer, lake, mesh):
    result = run_query(
        layer,
        lake,
        {
            "metrics": ["revenue", "orders", "average_order_value"],
            "dimensions": ["region"],
            "filters": [{"dimension": "channel", "op": "=", "value": "store"}],
            "order_by": ["-revenue"],
        },
    )
    expected = (
        mesh["sales/order_lines"]
        .filter(pl.col("channel") == "store")
        .join(mesh["sales/stores"], on="store_id")
        .group_by("region")
        .agg(revenue=pl.col("net_amount").sum(), orders=pl.col("order_id").n_unique())
        .with_columns(average_order_value=pl.col("revenue") / pl.col("orders"))
        .sort("revenue", descending=True)
    )
    assert result["region"].to_list() == expected["region"].to_list()
    assert result["revenue"].to_list() == pytest.approx(expected["revenue"].to_list())
    assert result["orders"].to_list() == expected["orders"].to_list()
    assert result["average_order_value"].to_list() == pytest.approx(
        expected["average_order_value"].to_list()
    )


def test_cross_domain_joins_and_quotes_in_values(layer, lake, mesh):
    by_tier = run_query(layer, lake, {"metrics": ["units_sold"], "dimensions": ["loyalty_tier"]})
    expected = (
        mesh["sales/order_lines"]
        .join(mesh["customers/customer_profiles"], on="customer_id")
        .group_by("loyalty_tier")
        .agg(units_sold=pl.col("quantity").sum())
        .sort("loyalty_tier")
    )
    assert by_tier.to_dicts() == expected.to_dicts()
    quoted = run_query(
        layer,
        lake,
        {
            "metrics": ["revenue"],
            "filters": [{"dimension": "store_name", "op": "=", "value": "Mill's Yard"}],
        },
    )
    mill = mesh["sales/order_lines"].filter(pl.col("store_id") == 3)["net_amount"].sum()
    assert quoted["revenue"].to_list() == [pytest.approx(mill)]


def test_stock_on_hand_takes_the_last_snapshot_of_each_period(layer, lake, mesh):
    stock = mesh["inventory/stock_levels"]
    result = run_query(layer, lake, {"metrics": ["stock_on_hand"], "time_grain": "month"})
    march_last = stock.filter(pl.col("snapshot_date") == pl.date(2025, 3, 2))["on_hand"].sum()
    april_last = stock.filter(pl.col("snapshot_date") == pl.date(2025, 4, 1))["on_hand"].sum()
    assert result["stock_on_hand"].to_list() == [march_last, april_last]
    overall = run_query(layer, lake, {"metrics": ["stock_on_hand"], "end": "2025-03-31"})
    assert overall["stock_on_hand"].to_list() == [march_last]


def test_metrics_of_different_products_meet_on_shared_dimensions(layer, lake, mesh):
    result = run_query(
        layer,
        lake,
        {"metrics": ["revenue", "stock_on_hand"], "dimensions": ["region"], "time_grain": "month"},
    )
    assert result.columns == ["month", "region", "revenue", "stock_on_hand"]
    assert result.height == 6  # 2 months x 3 regions
    assert result["revenue"].sum() == pytest.approx(mesh["sales/order_lines"]["net_amount"].sum())
    totals = run_query(layer, lake, {"metrics": ["customer_count", "store_count"]})
    assert totals.to_dicts() == [{"customer_count": 5, "store_count": 4}]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"metrics": []}, "at least one metric"),
        ({"metrics": ["profit"]}, "unknown metric 'profit'"),
        ({"metrics": ["revenue"], "dimensions": ["email"]}, "no dimension 'email'"),
        ({"metrics": ["product_count"], "time_grain": "month"}, "no time dimension"),
        ({"metrics": ["revenue"], "time_grain": "fortnight"}, "time grain"),
        (
            {"metrics": ["revenue"], "filters": [{"dimension": "channel", "op": "~", "value": 1}]},
            "operator",
        ),
        ({"metrics": ["revenue"], "order_by": ["-region"]}, "cannot order by"),
        (
            {
                "metrics": ["revenue"],
                "filters": [{"dimension": "store_id", "op": "=", "value": "x"}],
            },
            "no dimension",
        ),
    ],
)
def test_unanswerable_queries_say_why(layer, query, message):
    with pytest.raises(SemanticQueryError, match=message):
        compile_query(layer, query)


@pytest.mark.parametrize("sql", ["DROP TABLE x", "SELECT 1; SELECT 2", "INSERT INTO t SELECT 1"])
def test_only_single_selects_pass(sql):
    with pytest.raises(SemanticQueryError):
        assert_read_only(sql)
