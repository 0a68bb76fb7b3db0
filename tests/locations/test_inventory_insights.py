"""inventory/insights: stock against 28 days before and what runs out first."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from dagster_project.ask.narratives import InsightsRun, insights_report_uri
from dagster_project.core.contracts import load_contract
from dagster_project.core.settings import MeshSettings
from domains.inventory.insights import inventory_insights

END = date(2025, 6, 30)
EARLIER = END - timedelta(days=28)
PRODUCTS = pl.LazyFrame({"product_id": [1, 2], "product_name": ["Hose", "Rake"]})


def _stock(rows: list[tuple[date, int, int, int]]) -> pl.LazyFrame:
    """(day, product, on_hand, on_order) at store 7."""
    return pl.LazyFrame(
        [(d, 7, p, h, o) for d, p, h, o in rows],
        schema=["snapshot_date", "store_id", "product_id", "on_hand", "on_order"],
        orient="row",
    )


def _sales(units_per_day: dict[int, int]) -> pl.LazyFrame:
    rows = [
        (END - timedelta(days=d), 7, p, u, float(u), 1)
        for d in range(28)
        for p, u in units_per_day.items()
    ]
    types = [pl.Date, pl.Int64, pl.Int64, pl.Int64, pl.Float64, pl.Int64]
    columns = ["order_date", "store_id", "product_id", "units", "net_revenue", "order_count"]
    return pl.LazyFrame(rows, schema=dict(zip(columns, types, strict=True)), orient="row")


@pytest.fixture
def home(tmp_path) -> MeshSettings:
    return MeshSettings(home=str(tmp_path))  # not MESH_HOME: the report goes where `run` says


def test_stock_change_stock_outs_and_days_of_cover(home: MeshSettings) -> None:
    stock = _stock([(EARLIER, 1, 40, 0), (EARLIER, 2, 40, 0), (END, 1, 0, 10), (END, 2, 60, 0)])
    run = InsightsRun("inventory", home)
    frame = inventory_insights(stock, PRODUCTS, _sales({1: 2, 2: 3}), run=run)
    assert (
        frame.columns
        == load_contract("domains/inventory/contracts/insights.odcs.yaml").column_names
    )
    rows = {(r["subject"], r["metric"]): r for r in frame.iter_rows(named=True)}
    on_hand = rows[("all", "on_hand")]
    assert (on_hand["value"], on_hand["previous_value"], on_hand["change_pct"]) == (60, 80, -25)
    assert on_hand["narrative"] == "Units on hand fell 25.0% to 60 (from 80)."
    assert rows[("all", "stock_outs")]["value"] == 1
    risks = frame.filter(pl.col("kind") == "risk")
    assert risks["subject"].to_list() == ["product=1", "product=2"]  # 5 days, then 20
    assert risks["value"].to_list() == [5.0, 20.0]
    assert risks["narrative"][0].startswith("Hose has 5.0 days of cover")
    report = home.files.read_text(insights_report_uri(home, "inventory"))
    assert f"Stock counted on {END} against {EARLIER}." in report
    assert "## Stock-out risks" in report
    assert report.endswith("## Data quality warnings\n\n- None.\n")  # no check warns


def test_without_an_earlier_count_there_is_nothing_to_compare(home: MeshSettings) -> None:
    run = InsightsRun("inventory", home)
    frame = inventory_insights(_stock([(END, 1, 5, 0)]), PRODUCTS, _sales({}), run=run)
    assert frame["kind"].to_list() == ["headline", "headline"]
    assert frame["previous_value"].null_count() == 2
    assert frame["period_start"].to_list() == [END, END]
