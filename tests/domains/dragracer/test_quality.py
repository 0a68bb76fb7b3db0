"""Anomaly and drift checks on real, thin data: the contract's declarations (in the domain,
not the platform) give every season's run a verdict that fits what is there to judge."""

from __future__ import annotations

import dagster as dg

from tests.domains.dragracer.conftest import SEASONS, RealMesh


def _verdicts(mesh: RealMesh, product: str, check: str) -> list[dg.AssetCheckEvaluation]:
    return [
        e
        for e in mesh.report.check_results()
        if e.asset_key.to_user_string() == f"dragracer/{product}" and e.check_name == check
    ]


def _not_judged(e: dg.AssetCheckEvaluation) -> bool:
    return "skipped" in e.metadata and (e.description or "").startswith("not judged:")


def test_every_season_gets_an_anomaly_and_a_drift_verdict_none_crashed(real_mesh: RealMesh):
    checked = {
        ("appearances", "anomalies"),
        ("appearances", "drift"),
        ("episodes", "anomalies"),
    }
    for product, check in checked:
        verdicts = _verdicts(real_mesh, product, check)
        assert len(verdicts) == len(SEASONS), (product, check)  # one run per season
        for e in verdicts:
            assert e.severity == dg.AssetCheckSeverity.WARN, e  # advisory: never blocks
            assert "could not be evaluated" not in (e.description or ""), e
            assert "error" not in e.metadata, e
            assert not (e.passed and _not_judged(e)), e


def test_thin_history_is_not_judged_and_enough_is_judged(real_mesh: RealMesh):
    # S01 has no season before it and S02 one of 63 placements: fewer than minRows (150)
    anomalies = _verdicts(real_mesh, "appearances", "anomalies")
    assert [_not_judged(e) for e in anomalies] == [True, True, False]
    assert "at least 150 needed" in anomalies[0].description
    assert anomalies[2].passed, anomalies[2].description  # real placements, no false alarm
    # ranks are null once a queen is out: scored all the same (integer with nulls)
    assert "169 new rows" in anomalies[2].description

    drift = _verdicts(real_mesh, "appearances", "drift")
    assert [_not_judged(e) for e in drift] == [True, True, False]
    assert "against 0 in the 730 days before" in drift[0].description
    s03 = drift[2]
    assert "2011-01-24 to 2011-05-02" in s03.description  # S03 against S01 and S02
    if not s03.passed:  # a drift says which column moved and how
        assert s03.metadata["drifted_columns"].value
        assert s03.metadata["root_cause"].value.strip("- ")

    # about 12 episodes a season: three seasons are still too few to learn from (40)
    episodes = _verdicts(real_mesh, "episodes", "anomalies")
    assert all(_not_judged(e) and "rows to learn" in e.description for e in episodes)
