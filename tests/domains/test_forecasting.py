from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from domains.inventory import forecasting as fc
from tests.sales_history import history, trained


def _sales(rows: list[tuple[date, int, int, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["order_date", "store_id", "product_id", "units", "net_revenue"],
        orient="row",
    ).with_columns(order_count=pl.lit(1))


PRODUCTS = pl.DataFrame(
    {"product_id": [1, 2], "list_price": [10.0, 4.0], "category": ["Toys", "Books"]}
)
MONDAY = date(2025, 3, 3)


def _daily(days: int, units=lambda d: 2, discount=lambda d: 0.0) -> pl.DataFrame:
    """Store 1 sells product 1 every day (product 2 only on the first day)."""
    rows = []
    for i in range(days):
        day = MONDAY + timedelta(days=i)
        n = units(i)
        rows.append((day, 1, 1, n, round(n * 10.0 * (1 - discount(i)), 2)))
    rows.append((MONDAY, 1, 2, 1, 4.0))
    return _sales(rows)


def test_the_panel_fills_unsold_days_with_zero_and_measures_the_discount() -> None:
    panel = fc.sales_panel(_daily(3, discount=lambda i: 0.2 if i == 1 else 0.0), PRODUCTS)
    assert panel.height == 2 * 3  # two pairs, three days
    product_2 = panel.filter(pl.col("product_id") == 2)
    assert product_2["units"].to_list() == [1.0, 0.0, 0.0]
    discount = panel.filter(pl.col("product_id") == 1)["product_discount"].to_list()
    assert discount == pytest.approx([0.0, 0.2, 0.0])


def test_features_at_an_origin_ignore_everything_after_it() -> None:
    before = fc.origin_stats(fc.sales_panel(_daily(20), PRODUCTS))
    changed = fc.origin_stats(
        fc.sales_panel(_daily(20, units=lambda i: 50 if i > 9 else 2), PRODUCTS)
    )
    origin = MONDAY + timedelta(days=9)
    a = fc.examples(before, [origin], 5).drop("units").sort("store_id", "product_id", "day")
    b = fc.examples(changed, [origin], 5).drop("units").sort("store_id", "product_id", "day")
    assert a.equals(b)


def test_seasonal_naive_is_the_same_weekday_one_or_two_weeks_earlier() -> None:
    sales = _daily(21, units=lambda i: i)  # units = day index: the lag is readable
    stats = fc.origin_stats(fc.sales_panel(sales, PRODUCTS))
    origin = MONDAY + timedelta(days=13)
    rows = fc.examples(stats, [origin], 14).filter(pl.col("product_id") == 1).sort("day")
    ahead = rows["days_ahead"].to_list()
    expected = [13 + h - (7 if h <= 7 else 14) for h in ahead]
    assert rows["baseline"].to_list() == expected


def test_a_promotion_seen_at_the_origin_is_planned_until_its_sunday() -> None:
    # 20% off from Monday to Sunday of the second week; the origin is its Wednesday.
    sales = _daily(10, discount=lambda i: 0.2 if 7 <= i <= 13 else 0.0)
    stats = fc.origin_stats(fc.sales_panel(sales, PRODUCTS))
    rows = fc.examples(stats, [MONDAY + timedelta(days=9)], 7)
    planned = rows.filter(pl.col("product_id") == 1).sort("day")
    assert planned["discount"].to_list() == pytest.approx([0.2] * 4 + [0.0] * 3)
    assert planned["promotion"].to_list() == [1] * 4 + [0] * 3


def test_the_backtest_holds_out_the_horizon_or_half_a_short_history() -> None:
    assert fc.backtest_days(60) == fc.HORIZON
    assert fc.backtest_days(14) == 7
    assert fc.backtest_days(2) == 1
    with pytest.raises(fc.NotEnoughHistory):
        fc.backtest_days(1)


def test_training_origins_stay_within_the_row_budget() -> None:
    last = MONDAY + timedelta(days=59)
    origins = fc.training_origins(MONDAY, last, 14, pairs=100, rows=100 * 14 * 5)
    assert len(origins) == 5
    assert all(o + timedelta(days=14) <= last for o in origins)
    short = fc.training_origins(MONDAY, MONDAY + timedelta(days=6), 14, pairs=100, rows=10)
    assert min(short) >= MONDAY + timedelta(days=fc.MIN_ORIGIN_HISTORY - 1)


def test_a_budget_of_one_origin_never_trains_on_one_or_two_days_of_history() -> None:
    # 30 days at a million order lines (issue 15): the backtest leaves 16 days, so the only
    # full-horizon origins were the first two days; with one origin in the budget, training
    # used day 2, where most pairs have not sold yet, and forecast ~1e59 units.
    last = MONDAY + timedelta(days=15)
    origins = fc.training_origins(MONDAY, last, 14, pairs=30_000, rows=100_000)
    assert origins
    assert min(origins) >= MONDAY + timedelta(days=fc.MIN_ORIGIN_HISTORY - 1)


def test_the_model_beats_seasonal_naive_on_simulated_sales() -> None:
    result = trained()
    metrics = result.metrics
    assert {"mae", "wape", "bias", "baseline_mae", "baseline_wape", "baseline_bias"} <= set(metrics)
    assert metrics["wape"] < 0.9 * metrics["baseline_wape"]
    assert metrics["interval_coverage"] == pytest.approx(0.8, abs=0.05)
    held = result.backtest
    assert held["day"].min() == result.origin + timedelta(days=1)
    assert held["day"].n_unique() == result.held_out
    assert (held["lower"] <= held["prediction"]).all() and (
        held["prediction"] <= held["upper"]
    ).all()


def test_a_deeper_discount_never_lowers_the_forecast() -> None:
    result, data = trained(), history()
    rows = fc.future_rows(data.daily_sales, data.products).with_columns(price_known=pl.lit(1))
    base = fc.score(result.model, rows.with_columns(discount=pl.lit(0.0), promotion=pl.lit(0)))
    cut = fc.score(result.model, rows.with_columns(discount=pl.lit(0.2), promotion=pl.lit(1)))
    base_units, cut_units = base["prediction"].to_numpy(), cut["prediction"].to_numpy()
    assert np.all(cut_units >= base_units - 1e-9)
    assert cut_units.sum() > 1.1 * base_units.sum()


def test_a_forecast_covers_every_pair_for_the_horizon() -> None:
    data = history()
    rows = fc.future_rows(data.daily_sales, data.products)
    forecast = fc.as_forecast(fc.score(trained().model, rows), "7")
    pairs = data.daily_sales.select("store_id", "product_id").n_unique()
    assert forecast.height == pairs * fc.HORIZON
    last = data.daily_sales["order_date"].max()
    assert forecast["forecast_date"].min() == last + timedelta(days=1)
    assert set(forecast["model_version"]) == {"7"}


def test_two_days_train_in_sample_and_say_so_and_one_day_is_too_few() -> None:
    data = history()
    first = data.daily_sales["order_date"].min()
    days = lambda n: data.daily_sales.filter(pl.col("order_date") < first + timedelta(days=n))  # noqa: E731
    cold = fc.train(days(2), data.products)
    assert cold.metrics["in_sample_backtest"] == 1.0
    assert fc.train(days(3), data.products).metrics["in_sample_backtest"] == 0.0
    with pytest.raises(fc.NotEnoughHistory):
        fc.train(days(1), data.products)
