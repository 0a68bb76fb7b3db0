"""customers/insights: customers, tiers and segments against 28 days before, without PII."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from dagster_project.ask.narratives import InsightsRun, insights_report_uri
from dagster_project.checks.risks import CheckRisk
from dagster_project.core.contracts import load_contract
from dagster_project.core.settings import MeshSettings
from domains.customers.insights import customers_insights
from domains.customers.transforms import customer_segments

END = date(2025, 6, 30)
LONG_AGO = date(2020, 1, 1)
# customer -> loyalty tier, signup day (days before END) and orders (days before END, amount).
CUSTOMERS = {
    1: ("gold", None, [(2, 100.0), (40, 100.0), (80, 100.0)]),
    2: ("gold", 30, [(35, 50.0), (70, 50.0)]),  # active before, not now
    3: ("silver", 1, [(0, 30.0)]),
    4: ("bronze", None, [(10, 20.0), (50, 40.0)]),
    5: ("silver", 20, [(5, 60.0)]),
}
PII = {"full_name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0000"}


def _order_lines(customers: dict = CUSTOMERS) -> pl.LazyFrame:
    rows = [
        (f"o{c}-{ago}", END - timedelta(days=ago), c, amount)
        for c, (_, _, orders) in customers.items()
        for ago, amount in orders
    ]
    return pl.LazyFrame(
        rows, schema=["order_id", "order_date", "customer_id", "net_amount"], orient="row"
    )


def _profiles(customers: dict = CUSTOMERS) -> pl.LazyFrame:
    rows = [
        {
            "customer_id": c,
            **PII,
            "birth_date": date(1990, 12, 10),
            "city": "Leeds",
            "country": "GB",
            "signup_date": END - timedelta(days=ago) if ago is not None else LONG_AGO,
            "loyalty_tier": tier,
            "marketing_opt_in": True,
        }
        for c, (tier, ago, _) in customers.items()
    ]
    return pl.LazyFrame(rows)


def _many() -> dict:
    """40 customers: regulars, some gone quiet in the last 28 days, newcomers in them."""
    customers = {}
    for c in range(40):
        orders = [(ago, 10.0 + c) for ago in range(c % 4 * 7 + 1, 120, 9 + c % 5)]
        if c % 3 == 0:
            orders = [(ago, amount) for ago, amount in orders if ago > 30]  # gone quiet
        if c % 7 == 0:
            orders = [(c % 20, 25.0)]  # a newcomer
        customers[c] = (("bronze", "silver", "gold")[c % 3], None, orders)
    return customers


@pytest.fixture
def home(tmp_path) -> MeshSettings:
    return MeshSettings(home=str(tmp_path))


def _insights(home: MeshSettings, risks: list[CheckRisk] = ()) -> pl.DataFrame:
    lines = _order_lines()
    run = InsightsRun("customers", home, list(risks))
    return customers_insights(customer_segments(lines), _profiles(), lines, run=run)


def test_customers_tiers_and_segments_against_the_period_before(home: MeshSettings) -> None:
    frame = _insights(home)
    contract = load_contract("domains/customers/contracts/insights.odcs.yaml")
    assert frame.columns == contract.column_names
    assert frame.select("kind", "subject", "metric").is_unique().all()
    rows = {(r["kind"], r["subject"], r["metric"]): r for r in frame.iter_rows(named=True)}
    active = rows[("headline", "all", "active_customers")]  # 1, 3, 4, 5 now; 1, 2, 4 before
    assert (active["value"], active["previous_value"], active["change_pct"]) == (4, 3, 33.3)
    assert active["period_start"] == END - timedelta(days=27) and active["period_end"] == END
    new = rows[("headline", "all", "new_customers")]
    assert (new["value"], new["previous_value"]) == (2, 1)
    per_customer = rows[("headline", "all", "revenue_per_customer")]
    assert (per_customer["value"], per_customer["previous_value"]) == (52.5, 63.33)
    # Revenue by tier: bronze 40 -> 20, gold 150 -> 100; silver had none before.
    tier_movers = frame.filter((pl.col("kind") == "mover") & (pl.col("metric") == "revenue"))
    assert tier_movers["subject"].to_list() == ["tier=bronze", "tier=gold"]
    assert tier_movers["narrative"][1] == "Revenue in tier gold fell 33.3% to 100.00 (from 150.00)."
    losing = rows[("risk", "tier=gold", "active_customers")]
    assert losing["narrative"] == "Active customer count in tier gold fell 50.0% to 1 (from 2)."
    assert frame.filter(pl.col("subject") == "tier=bronze", pl.col("kind") == "risk").is_empty()


def test_segments_now_against_the_same_rules_28_days_before(home: MeshSettings) -> None:
    lines = _order_lines(_many())
    run = InsightsRun("customers", home)
    frame = customers_insights(customer_segments(lines), _profiles(_many()), lines, run=run)
    now = customer_segments(lines).collect()["rfm_segment"].value_counts()
    then = customer_segments(lines.filter(pl.col("order_date") < END - timedelta(days=27)))
    then = then.collect()["rfm_segment"].value_counts()
    movers = frame.filter(pl.col("kind") == "mover", pl.col("subject").str.starts_with("segment="))
    assert 0 < movers.height <= 3 and (movers["metric"] == "customers").all()
    for row in movers.iter_rows(named=True):
        name = row["subject"].removeprefix("segment=")
        assert row["value"] == now.filter(pl.col("rfm_segment") == name)["count"].sum()
        assert row["previous_value"] == then.filter(pl.col("rfm_segment") == name)["count"].sum()
        assert row["change_pct"] != 0
    changes = movers["change_pct"].abs().to_list()
    assert changes == sorted(changes, reverse=True)
    at_risk = frame.filter(pl.col("kind") == "risk", pl.col("subject") == "segment=at_risk")
    assert at_risk["metric"].to_list() == ["lifetime_value"]
    count = now.filter(pl.col("rfm_segment") == "at_risk")["count"].item()
    assert at_risk["narrative"][0].startswith("Lifetime value of at-risk customers ")
    assert f"That is {count} customers who bought often or spent much" in at_risk["narrative"][0]
    nobody_new = frame.filter(pl.col("metric") == "new_customers").row(0, named=True)
    assert (nobody_new["value"], nobody_new["previous_value"]) == (0, 0)


def test_no_personal_data_and_the_warnings_in_rows_and_report(home: MeshSettings) -> None:
    risk = CheckRisk(
        "customers/customer_profiles",
        "drift",
        "column=customers/customer_profiles.loyalty_tier",
        "drift_score",
        0.42,
        "Column loyalty_tier of customers/customer_profiles drifted: ...",
    )
    frame = _insights(home, [risk])
    warning = frame.filter(pl.col("metric") == "drift_score").row(0, named=True)
    assert (warning["kind"], warning["value"], warning["previous_value"]) == ("risk", 0.42, None)
    assert warning["period_end"] == END
    report = home.files.read_text(insights_report_uri(home, "customers"))
    assert report.startswith("# Customers: what changed")
    for heading in ("## Headline", "## Top movers", "## Risks", "## Data quality warnings"):
        assert heading in report
    assert f"- {risk.narrative}" in report.split("## Data quality warnings")[1]
    text = report + " ".join(frame["narrative"]) + " ".join(frame["subject"])
    for value in [*PII.values(), "Ada", "1990-12-10", "Leeds"]:
        assert value not in text
