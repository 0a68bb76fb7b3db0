import polars as pl
import pytest

from domains.inventory import forecasting as fc
from domains.inventory.scenarios import Scenario, apply, markdown_table, project
from tests.sales_history import history, trained


@pytest.fixture(scope="module")
def rows() -> pl.DataFrame:
    data = history()
    regions = data.stores.select("store_id", "region")
    return fc.future_rows(data.daily_sales, data.products).join(regions, on="store_id")


@pytest.fixture(scope="module")
def stock() -> pl.DataFrame:
    levels = history().stock_levels
    return levels.filter(pl.col("snapshot_date") == pl.col("snapshot_date").max())


def _predict(frame: pl.DataFrame) -> pl.Series:
    return fc.score(trained().model, frame)["prediction"]


def _category(rows: pl.DataFrame) -> str:
    return rows.group_by("category").len().sort("len", descending=True)["category"][0]


def test_a_price_cut_raises_projected_units_and_only_where_it_applies(rows, stock) -> None:
    category = _category(rows)
    result = project(_predict, rows, stock, Scenario(price_change_pct=-10, category=category))
    by = {r["category"]: r for r in result.by_category.iter_rows(named=True)}
    assert by[category]["scenario_units"] > by[category]["baseline_units"]
    others = [r for c, r in by.items() if c != category]
    assert all(r["scenario_units"] == r["baseline_units"] for r in others)
    assert result.totals["scenario_units"] > result.totals["baseline_units"]
    assert result.narrative.startswith(f"A 10% price cut for category {category} over the next 14")
    assert "raises projected units" in result.narrative


def test_a_promotion_sets_the_discount_and_the_flag_in_scope(rows) -> None:
    store = int(rows["store_id"][0])
    changed = apply(rows, Scenario(promotion_discount=0.25, store_id=store))
    scoped = changed.filter(pl.col("store_id") == store)
    assert (scoped["promotion"] == 1).all() and (scoped["price_known"] == 1).all()
    assert (scoped["discount"] >= 0.25 - 1e-9).all()
    assert changed.filter(pl.col("store_id") != store).equals(
        rows.filter(pl.col("store_id") != store)
    )


def test_a_demand_shock_scales_units_and_brings_stockouts(rows, stock) -> None:
    region = rows["region"][0]
    window = Scenario(demand_shock_pct=50, region=region, days=7)
    result = project(_predict, rows, stock, window)
    scoped = rows.filter((pl.col("region") == region) & (pl.col("days_ahead") <= 7))
    base = float(_predict(scoped).sum())
    assert result.totals["scenario_units"] - result.totals["baseline_units"] == pytest.approx(
        0.5 * base, rel=1e-3
    )
    assert result.totals["scenario_stockouts"] >= result.totals["baseline_stockouts"]
    assert result.totals["revenue_change_pct"] > 0


def test_scenarios_reject_impossible_changes() -> None:
    with pytest.raises(ValueError):
        Scenario(days=15)
    with pytest.raises(ValueError):
        Scenario(promotion_discount=1.5)
    with pytest.raises(ValueError):
        Scenario(price_change_pct=-100)


def test_markdown_table_renders_rows() -> None:
    text = markdown_table(pl.DataFrame({"category": ["Toys"], "units": [1234.5]}))
    assert text.splitlines() == ["| category | units |", "| --- | --- |", "| Toys | 1,234.5 |"]
