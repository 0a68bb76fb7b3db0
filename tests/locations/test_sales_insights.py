"""sales/insights: what changed in the last 28 days, as rows and as a Markdown report."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from dagster_project.ask.narratives import InsightsRun, insights_report_uri
from dagster_project.core.contracts import load_contract
from dagster_project.core.settings import MeshSettings
from domains.sales.insights import sales_insights

END = date(2025, 6, 30)
STORES = pl.LazyFrame({"store_id": [1, 2], "region": ["North", "South"]})
PRODUCTS = pl.LazyFrame({"product_id": [10, 20], "category": ["Toys", "Garden"]})


def _daily(current: dict[tuple[int, int], float], previous: dict[tuple[int, int], float]):
    """One sale a day per (store, product) over both periods at the given daily revenue."""
    rows = []
    for offset in range(56):
        day = END - timedelta(days=offset)
        for (store, product), revenue in (current if offset < 28 else previous).items():
            rows.append((day, store, product, 1, revenue, 1))
    columns = ["order_date", "store_id", "product_id", "units", "net_revenue", "order_count"]
    return pl.LazyFrame(rows, schema=columns, orient="row")


@pytest.fixture
def home(tmp_path) -> MeshSettings:
    return MeshSettings(home=str(tmp_path))  # not MESH_HOME: the report goes where `run` says


def test_headline_and_movers_against_the_period_before(home: MeshSettings) -> None:
    daily = _daily({(1, 10): 15.0, (2, 20): 10.0}, {(1, 10): 10.0, (2, 20): 10.0})
    frame = sales_insights(daily, STORES, PRODUCTS, run=InsightsRun("sales", home))
    contract = load_contract("domains/sales/contracts/insights.odcs.yaml")
    assert frame.columns == contract.column_names
    rows = {(r["kind"], r["subject"], r["metric"]): r for r in frame.iter_rows(named=True)}
    revenue = rows[("headline", "all", "revenue")]
    assert (revenue["value"], revenue["previous_value"]) == (700.0, 560.0)
    assert revenue["change_pct"] == 25.0
    assert revenue["period_start"] == END - timedelta(days=27)
    assert revenue["narrative"] == "Revenue rose 25.0% to 700.00 (from 560.00)."
    assert rows[("headline", "all", "units")]["change_pct"] == 0.0
    north = rows[("mover", "region=North", "revenue")]
    assert north["change_pct"] == 50.0
    assert north["narrative"] == "Revenue in region North rose 50.0% to 420.00 (from 280.00)."
    movers = frame.filter(pl.col("kind") == "mover")["subject"].to_list()
    assert movers == ["region=North", "region=South", "category=Toys", "category=Garden"]
    assert frame.select("kind", "subject", "metric").is_unique().all()

    report = home.files.read_text(insights_report_uri(home, "sales"))
    assert report.startswith("# Sales: what changed")
    assert "- Revenue in category Toys rose 50.0% to 420.00 (from 280.00)." in report


def test_a_first_period_has_nothing_to_compare(home: MeshSettings) -> None:
    daily = _daily({(1, 10): 5.0}, {}).filter(pl.col("order_date") > END - timedelta(days=3))
    frame = sales_insights(daily, STORES, PRODUCTS, run=InsightsRun("sales", home))
    assert frame["kind"].to_list() == ["headline"] * 3
    assert frame["change_pct"].null_count() == 3
    assert "nothing to compare" in frame["narrative"][0]
