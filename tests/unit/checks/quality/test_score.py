from datetime import date, timedelta

import polars as pl

from dagster_project.checks.freshness import FreshnessVerdict
from dagster_project.checks.quality.score import (
    QualityScore,
    catalog_fields,
    completeness,
    save_score,
    score_history,
    uniqueness,
    validity,
)
from dagster_project.checks.rules import RuleOutcome


def _score(**dimensions) -> QualityScore:
    base = {"completeness": 1.0, "validity": 1.0, "uniqueness": 1.0, "freshness": 1.0}
    notes = {k: "measured" for k in base}
    return QualityScore("sales/order_lines", {**base, **dimensions}, notes, "2025-03-10T00:00:00")


def test_dimensions_measure_what_they_say(demo_contracts):
    contract = demo_contracts["sales/stores"]
    frame = pl.DataFrame({"store_id": [1, 2], "store_name": ["A", None], "city": ["x", "y"]})
    value, note = completeness(frame, contract, imputed=0)
    assert value == 5 / 6 and note == "1 of 6 values missing"
    outcomes = [RuleOutcome("not_null", {"store_name": 1}), RuleOutcome("range", {"size": 0})]
    assert validity(outcomes, rows=2) == (0.75, "1 value(s) break a rule")
    assert uniqueness([RuleOutcome("unique", {"store_id": 1})], rows=4)[0] == 0.75
    day = timedelta(hours=24)
    assert FreshnessVerdict("d", day, date(2025, 3, 1), timedelta(hours=1)).score()[0] == 1.0
    assert FreshnessVerdict("d", day, date(2025, 3, 1), timedelta(hours=36)).score()[0] == 0.5
    assert FreshnessVerdict("d", day, date(2025, 3, 1), timedelta(hours=72)).score()[0] == 0.0
    assert FreshnessVerdict("d", day).score() == (
        None,
        "not judged: no d values to judge freshness by",
    )


def test_the_score_weighs_what_applies_and_says_what_is_weakest():
    perfect = _score(anomalies=None, drift=None)
    assert perfect.score == 100.0 and perfect.grade == "good"
    assert "Anomalies: measured." in perfect.narrative() or "not monitored" in perfect.narrative()
    worse = _score(anomalies=0.5, drift=0.6)
    assert worse.score == round(100 * (0.7 + 0.15 * 0.5 + 0.15 * 0.6), 1)
    assert worse.narrative().startswith("sales/order_lines scores 86/100 (fair).")
    assert "Anomalies 50%." in worse.narrative()
    assert worse.narrative().endswith("The weakest dimension is anomalies.")


def test_the_catalog_judges_freshness_by_the_newest_event_as_of_its_build(lake, demo_contracts):
    contract = demo_contracts["sales/order_lines"]  # SLA 48 h; event time: order_date
    assert catalog_fields(lake.settings, contract)["quality_score"] is None
    save_score(lake.settings, contract, _score(anomalies=1.0, drift=1.0))
    never = catalog_fields(lake.settings, contract)
    assert never["quality_freshness"] is None and never["quality_score"] == 100.0
    assert "not judged: no order_date values" in never["quality_narrative"]

    newest = date(2025, 3, 9)
    verdict = FreshnessVerdict("order_date", timedelta(hours=48), newest, timedelta(hours=72))
    stale = catalog_fields(lake.settings, contract, verdict)
    assert stale["quality_freshness"] == 0.5 and stale["quality_score"] < 100
    assert (
        "newest order_date 2025-03-09 is 3 days old, beyond the SLA of 2 days"
        in (stale["quality_narrative"])
    )


def test_every_saved_score_adds_a_line_of_history(mesh_home, demo_contracts):
    contract = demo_contracts["sales/order_lines"]
    assert score_history(mesh_home, contract) == []
    save_score(mesh_home, contract, _score(drift=1.0))
    later = _score(drift=0.5)
    later.evaluated_at = "2025-03-11T00:00:00"
    save_score(mesh_home, contract, later)
    history = score_history(mesh_home, contract)
    assert [h["evaluated_at"][:10] for h in history] == ["2025-03-10", "2025-03-11"]
    assert history[1]["drift"] == 0.5 and history[1]["score"] == later.score < history[0]["score"]
