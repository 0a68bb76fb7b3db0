from datetime import date

import polars as pl
import pytest

from domains.inventory.accuracy import forecast_accuracy


def test_accuracy_compares_each_forecast_day_with_what_sold() -> None:
    d1, d2, future = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)
    forecast = pl.DataFrame(
        {
            "forecast_date": [d1, d1, d2, d2, future],
            "store_id": [1, 1, 1, 1, 1],
            "product_id": [1, 2, 1, 2, 1],
            "predicted_units": [4.0, 1.0, 3.0, 2.0, 9.0],
            "lower_units": [2.0, 0.0, 1.0, 0.0, 5.0],
            "upper_units": [6.0, 2.0, 4.0, 3.0, 12.0],
            "model_version": ["1", "1", "2", "2", "2"],
        }
    )
    sold = pl.DataFrame(  # product 2 sold nothing on day 2: it has no row
        {
            "order_date": [d1, d1, d2],
            "store_id": [1, 1, 1],
            "product_id": [1, 2, 1],
            "units": [5, 1, 6],
        }
    )
    result = forecast_accuracy(forecast.lazy(), sold.lazy()).collect()
    assert result["forecast_date"].to_list() == [d1, d2]  # the future day has no actuals yet
    day1, day2 = result.row(0, named=True), result.row(1, named=True)
    assert (day1["forecast_units"], day1["actual_units"], day1["absolute_error"]) == (5.0, 6.0, 1.0)
    assert day1["wape"] == pytest.approx(1 / 6, abs=1e-4)
    assert day1["bias"] == pytest.approx(-1 / 6, abs=1e-4)
    assert day1["interval_coverage"] == 1.0
    assert (day2["absolute_error"], day2["bias_units"]) == (5.0, -1.0)  # |3-6| + |2-0|
    assert day2["interval_coverage"] == 0.5  # 6 is above the upper bound of 4
    assert day2["model_version"] == "2" and day2["pairs"] == 2
