from datetime import UTC, date, datetime

import polars as pl

from dagster_project.assembly.locations import product_assets
from dagster_project.checks.policies import evaluate_policies
from dagster_project.checks.quality.companions import _keep_triage as keep_triage
from dagster_project.checks.quality.companions import (
    anomalies_contract,
    anomalies_document,
    anomalies_frame,
    companion_products,
    with_companions,
)
from dagster_project.core.contracts import Contract
from dagster_project.lake.storage import DateWindow


def test_the_generated_contract_is_valid_odcs_and_follows_every_policy(demo_contracts):
    parent = demo_contracts["sales/order_lines"]
    child = Contract(anomalies_document(parent))  # validated against the ODCS schema
    assert child.key == "sales/order_lines_anomalies"
    assert (child.version, child.owner, child.domain) == (parent.version, parent.owner, "sales")
    assert child.primary_key == ["order_id", "line_number"]
    assert child.partition_column == "order_date" and child.write_mode == "partition_overwrite"
    assert child.min_row_count == 0  # no anomalies is the good case
    assert child.column("status").accepted_values == ["open", "confirmed", "dismissed"]
    failing = {n: r.reason for n, r in evaluate_policies(child, None).items() if not r.passed}
    assert failing == {}


def test_only_products_that_ask_get_a_companion(demo_contracts):
    sales = {c.product: c for c in demo_contracts.values() if c.domain == "sales"}
    found = with_companions(sales)
    assert set(found) - set(sales) == {"order_lines_anomalies"}
    assets = product_assets(companion_products(sales.values()))
    assert [a.key.to_user_string() for a in assets] == ["sales/order_lines_anomalies"]
    assert any(k.to_user_string() == "sales/order_lines" for k in assets[0].dependency_keys)
    assert anomalies_contract(sales["order_lines"]) is found["order_lines_anomalies"]


def test_re_runs_keep_the_triage_status_someone_set(lake, demo_contracts):
    child = anomalies_contract(demo_contracts["sales/order_lines"])
    day = date(2025, 3, 10)
    first = datetime(2025, 3, 11, tzinfo=UTC).replace(tzinfo=None)

    def flagged(status: str, when: datetime) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "order_id": [1, 2],
                "line_number": [1, 1],
                "order_date": [day, day],
                "store_id": [3, 4],
                "product_id": [55, 56],
                "channel": ["store", "online"],
                "quantity": [50, 1],
                "unit_price": [9.99, 1.99],
                "net_amount": [499.5, 1.99],
                "anomaly_score": [3.0, 1.2],
                "detector": ["robust_z", "robust_z"],
                "reason": ["order 1 line 1: quantity 50 is 50× the usual", "order 2 line 1: …"],
                "status": [status, status],
                "detected_at": [when, when],
            }
        )

    lake.write(child, flagged("open", first).with_columns(status=pl.Series(["confirmed", "open"])))
    again = keep_triage(lake, child, flagged("open", datetime(2025, 3, 12)), DateWindow(day, day))
    assert again["status"].to_list() == ["confirmed", "open"]
    assert again["detected_at"].to_list() == [first, first]  # first detection kept


def test_the_companion_scores_the_parent_itself_when_nothing_was_staged(lake, demo_contracts):
    from dagster_project.checks.quality.anomaly import AnomalyOutcome, stage_flagged
    from demo.simulator import AnomalySpec, simulate

    parent = demo_contracts["sales/order_lines"]
    child = anomalies_contract(parent)
    day = date(2025, 3, 10)
    simulate(lake.settings, days=1, scale=8_000, start=day, anomalies=AnomalySpec(0.02))
    lines = pl.read_parquet(f"{lake.settings.home}/landing/sales/order_lines/*.parquet")
    lake.write(parent, lines)
    window = DateWindow(day, day)
    scored = anomalies_frame(lake, parent, child, window)
    assert scored.height >= 100 and scored["reason"].str.contains("usual|does not match").all()

    version = lake.info(parent.key).version
    staged = scored.head(3)
    outcome = AnomalyOutcome(lines.height, staged, detector=None, max_rate=0.0)
    stage_flagged(lake.settings, parent, window, outcome, version)
    assert anomalies_frame(lake, parent, child, window).height == 3  # the check's rows
    lake.write(parent, lines.head(10))  # the parent moved on: staged rows are stale
    assert anomalies_frame(lake, parent, child, window).height != 3


def test_re_runs_of_a_companion_whose_parent_has_no_key_keep_working(lake):
    # Found onboarding flights (no primary key): the second refresh failed joining on [].
    import yaml

    from tests.factories import REPO

    doc = yaml.safe_load((REPO / "domains/sales/contracts/order_lines.odcs.yaml").read_text())
    for prop in doc["schema"][0]["properties"]:
        prop.pop("primaryKey", None), prop.pop("primaryKeyPosition", None)
    parent = Contract(doc)
    child = Contract(anomalies_document(parent))
    assert parent.primary_key == [] and child.primary_key == []
    day = date(2025, 3, 10)
    rows = pl.DataFrame(
        {c: [None] for c in child.column_names},
        schema=child.polars_schema,
    ).with_columns(order_date=pl.lit(day), status=pl.lit("open"))
    lake.write(child, rows)
    again = keep_triage(lake, child, rows, DateWindow(day, day))
    assert again.height == 1
