import math
from datetime import date

import numpy as np
import polars as pl
import pytest

from dagster_project.ai import AIProvider, Generation, OfflineProvider
from domains.inventory import replenishment as rp

COUNTED = date(2025, 3, 14)


def _forecast(days: int, predicted: float, upper: float) -> pl.LazyFrame:
    return pl.DataFrame(
        {
            "forecast_date": [date(2025, 3, 15 + d) for d in range(days)],
            "store_id": [1] * days,
            "product_id": [1] * days,
            "predicted_units": [predicted] * days,
            "lower_units": [0.0] * days,
            "upper_units": [upper] * days,
            "model_version": ["1"] * days,
        }
    ).lazy()


def _stock(on_hand: int, on_order: int, *, product_id: int = 1) -> pl.LazyFrame:
    old = {"snapshot_date": date(2025, 3, 13), "on_hand": 999, "on_order": 999}
    new = {"snapshot_date": COUNTED, "on_hand": on_hand, "on_order": on_order}
    return pl.DataFrame(
        [
            {**old, "store_id": 1, "product_id": product_id},
            {**new, "store_id": 1, "product_id": product_id},
        ]
    ).lazy()


def _products(lead_time: int) -> pl.LazyFrame:
    return pl.DataFrame({"product_id": [1, 2], "lead_time_days": [lead_time, 3]}).lazy()


def test_the_order_tops_up_lead_time_demand_and_safety_stock() -> None:
    # 4 days of lead time at 5 units a day, each day's 90th percentile 3 units above:
    # demand 20, safety sqrt(4 * 3^2) = 6; 9 on hand and 2 on order leave 15 to order.
    plan = rp.replenishment_plan(_forecast(14, 5.0, 8.0), _stock(9, 2), _products(4))
    row = plan.row(0, named=True)
    assert row["forecast_units_lead_time"] == 20.0
    assert row["safety_stock"] == 6.0
    assert row["reorder_qty"] == 15
    # P(demand > 11) for Normal(20, 6 / 1.2816): about 97.2%
    assert row["stockout_risk"] == pytest.approx(0.9725, abs=1e-3)
    assert row["days_of_cover"] == 1.8  # 9 on hand at 5 a day
    assert row["rationale"].startswith("Order 15 units: the 4-day lead time needs about 20")


def test_enough_stock_means_no_order_and_a_small_risk() -> None:
    plan = rp.replenishment_plan(_forecast(14, 5.0, 8.0), _stock(30, 10), _products(4))
    row = plan.row(0, named=True)
    assert row["reorder_qty"] == 0
    assert row["stockout_risk"] < 0.001
    assert row["rationale"].startswith("No order needed: 30 on hand and 10 on order cover")


def test_lead_times_beyond_the_forecast_repeat_its_last_day() -> None:
    plan = rp.replenishment_plan(_forecast(14, 2.0, 2.0), _stock(0, 0), _products(20))
    row = plan.row(0, named=True)
    assert row["forecast_units_lead_time"] == 40.0  # 14 forecast days + 6 more at 2 a day
    assert row["reorder_qty"] == 40
    assert row["stockout_risk"] == 1.0  # no spread: demand surely exceeds nothing


def test_a_product_without_forecast_needs_nothing() -> None:
    plan = rp.replenishment_plan(_forecast(14, 2.0, 3.0), _stock(5, 0, product_id=2), _products(4))
    row = plan.row(0, named=True)
    assert (row["forecast_units_lead_time"], row["reorder_qty"], row["stockout_risk"]) == (0, 0, 0)
    assert row["days_of_cover"] is None


def test_the_offline_provider_keeps_the_templates() -> None:
    plan = rp.replenishment_plan(_forecast(14, 5.0, 8.0), _stock(9, 2), _products(4))
    explained, by = rp.explain(plan, OfflineProvider(), top=5)
    assert explained["rationale"].to_list() == plan["rationale"].to_list()
    assert by.startswith("offline template")


class _Writer(AIProvider):
    """A provider answering with a fixed sentence (the OpenAI client's own tests
    live with the AI provider)."""

    name, model, embedding_model = "scripted", "scripted-1", "none"

    def __init__(self, sentence: str) -> None:
        super().__init__()
        self.sentence = sentence

    def generate(self, task):
        answer = task.output(sentence=self.sentence)
        if task.check and task.check(answer):
            return OfflineProvider().generate(task, fallback="ungrounded")
        return Generation(answer, self.provenance(task))

    def embed(self, texts):
        raise NotImplementedError


def test_a_configured_provider_writes_the_riskiest_rationales_if_grounded() -> None:
    plan = rp.replenishment_plan(_forecast(14, 5.0, 8.0), _stock(9, 2), _products(4))
    good = "Order 15 units now: 11 in stock and on order will not last the 4-day lead time."
    explained, by = rp.explain(plan, _Writer(good), top=5)
    assert explained["rationale"].to_list() == [good]
    assert by.startswith("scripted (scripted-1) for the 1 riskiest")
    vague, _ = rp.explain(plan, _Writer("Order some units soon."), top=5)
    assert vague["rationale"].to_list() == plan["rationale"].to_list()  # no quantity: template


def _at_scale(pairs: int) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    """`pairs` stores x products with one forecast day each, built as frames directly."""
    rng = np.random.default_rng(15)
    ids = np.arange(pairs)
    predicted = rng.uniform(0, 50, pairs).round(3)
    forecast = pl.DataFrame(
        {
            "forecast_date": [date(2025, 3, 15)] * pairs,
            "store_id": ids // 1000,
            "product_id": ids % 1000,
            "predicted_units": predicted,
            "lower_units": np.zeros(pairs),
            "upper_units": predicted + rng.uniform(0, 10, pairs).round(3),
            "model_version": ["1"] * pairs,
        }
    )
    stock = pl.DataFrame(
        {
            "snapshot_date": [COUNTED] * pairs,
            "store_id": ids // 1000,
            "product_id": ids % 1000,
            "on_hand": rng.integers(0, 5000, pairs) * 10 ** rng.integers(0, 9, pairs),
            "on_order": rng.integers(0, 100, pairs),
        }
    )
    products = pl.DataFrame({"product_id": np.arange(1000), "lead_time_days": np.full(1000, 7)})
    return forecast.lazy(), stock.lazy(), products.lazy()


def test_a_million_orders_are_planned_with_the_same_arithmetic() -> None:
    forecast, stock, products = _at_scale(1_000_000)
    plan = rp.replenishment_plan(forecast, stock, products)  # 3 s of CPU; row by row: 70
    assert plan.height == 1_000_000 and plan["reorder_qty"].null_count() == 0
    row = plan.row(123_456, named=True)
    f = forecast.collect().row(123_456, named=True)
    demand, safety = (
        7 * f["predicted_units"],
        math.sqrt(7) * (f["upper_units"] - f["predicted_units"]),
    )
    available = row["on_hand"] + row["on_order"]
    assert row["forecast_units_lead_time"] == pytest.approx(demand, abs=0.01)
    assert row["safety_stock"] == pytest.approx(safety, abs=0.01)
    assert row["reorder_qty"] == max(0, math.ceil(demand + safety - available - 1e-9))
    assert row["rationale"] == rp.rationale(
        {**row, "lead_time_demand": demand, "safety_stock": safety}
    )


def test_an_astronomical_forecast_leaves_its_order_empty_not_the_plan_failed() -> None:
    # 1e40 units fit a float but no integer column: the order is left empty (the
    # contract's not-null check stops it), every other order is planned.
    forecast, stock, products = _at_scale(10)
    huge = forecast.with_columns(
        predicted_units=pl.when(pl.col("product_id") == 3).then(1e40).otherwise("predicted_units")
    )
    plan = rp.replenishment_plan(huge, stock, products)
    empty = plan.filter(pl.col("reorder_qty").is_null())
    assert empty["product_id"].to_list() == [3]
    assert empty["rationale"][0].startswith("No order computed: the forecast is too large")
    assert plan["reorder_qty"].null_count() == 1 and plan["stockout_risk"].is_not_null().all()
