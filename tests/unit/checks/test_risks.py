"""Anomaly and drift warnings read back from a real Dagster instance as insight risks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pytest

from dagster_project.ask.narratives import domain_check_keys
from dagster_project.checks.fairness import FAIRNESS_CHECK
from dagster_project.checks.policies import (
    evaluate_policies,
    policy_check_results,
    policy_check_specs,
)
from dagster_project.checks.risks import check_risks, quality_check_keys
from dagster_project.core.contracts import load_contract
from dagster_project.products.product import asset_key
from tests.unit.checks.test_fairness import write_forecasts

KEY = dg.AssetKey(["shop", "orders"])
DRIFT = dg.AssetCheckKey(KEY, "drift")
ANOMALIES = dg.AssetCheckKey(KEY, "anomalies")
COLUMNS = {
    "price": {"score": 0.31, "method": "wasserstein", "threshold": 0.1, "drifted": True},
    "qty": {"score": 0.02, "method": "wasserstein", "threshold": 0.1, "drifted": False},
}


def _orders(drifted: bool) -> dg.AssetsDefinition:
    """shop/orders whose drift check warns (or passes) and whose anomaly check could not run."""

    @dg.asset(
        key=KEY,
        check_specs=[
            dg.AssetCheckSpec("drift", asset=KEY),
            dg.AssetCheckSpec("anomalies", asset=KEY),
        ],
    )
    def orders() -> dg.MaterializeResult:
        columns = {k: {**v, "drifted": v["drifted"] and drifted} for k, v in COLUMNS.items()}
        warn = dg.AssetCheckSeverity.WARN
        return dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(
                    check_name="drift",
                    passed=not drifted,
                    severity=warn,
                    metadata={
                        "columns": dg.MetadataValue.json(columns),
                        "current": "order_date 2025-03-11",
                        "reference": "the 28 days before",
                    },
                ),
                dg.AssetCheckResult(
                    check_name="anomalies",
                    passed=False,
                    severity=warn,
                    description="could not be evaluated: ValueError: no history",
                    metadata={"error": "Traceback ..."},
                ),
            ]
        )

    return orders


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def _run(instance: dg.DagsterInstance, drifted: bool) -> None:
    assert dg.materialize([_orders(drifted)], instance=instance).success


def _first_evaluation(instance: dg.DagsterInstance, key: dg.AssetCheckKey) -> str:
    oldest = instance.event_log_storage.get_asset_check_execution_history(key, limit=10)[-1]
    return datetime.fromtimestamp(oldest.event.timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def test_a_warning_is_a_risk_since_its_first_evaluation_in_a_row(instance) -> None:
    _run(instance, drifted=True)
    _run(instance, drifted=True)
    risks = check_risks(instance, [ANOMALIES, DRIFT])
    assert [(r.check, r.subject, r.metric, r.value) for r in risks] == [
        ("anomalies", "product=shop/orders", "anomalies_not_evaluated", 1.0),
        ("drift", "column=shop/orders.price", "drift_score", 0.31),  # qty did not drift
    ]
    since = _first_evaluation(instance, DRIFT)
    assert risks[1].narrative == (
        "Column price of shop/orders drifted: wasserstein score 0.310 against a threshold of "
        "0.1 (order_date 2025-03-11 against the 28 days before); the drift check has warned "
        f"since {since}, 2 evaluations in a row."
    )
    assert risks[0].narrative.startswith("The anomalies check on shop/orders could not be")
    assert "no history" not in risks[0].narrative  # free text from a check is never quoted


def test_a_check_that_passes_again_is_no_longer_a_risk(instance) -> None:
    _run(instance, drifted=True)
    _run(instance, drifted=False)
    assert [r.check for r in check_risks(instance, [DRIFT, ANOMALIES])] == ["anomalies"]
    assert check_risks(instance, [dg.AssetCheckKey(KEY, "never_run")]) == []


def test_only_the_domains_anomaly_and_drift_checks_are_read() -> None:
    keys = [
        dg.AssetCheckKey(dg.AssetKey(["other", "x"]), "drift"),
        dg.AssetCheckKey(KEY, "contract_unique"),
        DRIFT,
        ANOMALIES,
    ]
    assert quality_check_keys(keys, "shop") == [ANOMALIES, DRIFT]
    sales = domain_check_keys(load_contract("domains/sales/contracts/insights.odcs.yaml"))
    assert [k.to_user_string() for k in sales] == [
        "sales/daily_sales:drift",
        "sales/order_lines:anomalies",
        "sales/order_lines:drift",
    ]


def test_a_fairness_warning_is_a_risk_naming_the_segment_not_a_person(instance, lake) -> None:
    contract = write_forecasts(lake, {"East": 0.6})
    key = asset_key(contract.key)

    @dg.asset(key=key, check_specs=policy_check_specs(contract, key))
    def forecasts() -> dg.MaterializeResult:
        results = evaluate_policies(contract, None, None, lake)
        return dg.MaterializeResult(check_results=policy_check_results(results, key))

    assert dg.materialize([forecasts], instance=instance).success
    check = dg.AssetCheckKey(key, FAIRNESS_CHECK)
    assert check in quality_check_keys([check], contract.domain)
    (risk,) = check_risks(instance, [check])
    assert (risk.check, risk.subject, risk.metric) == (
        FAIRNESS_CHECK,
        "segment=shop/forecasts.region=East",
        "fairness_gap",
    )
    assert risk.value > 0.25
    assert risk.narrative.startswith(
        "On shop/forecasts, forecast error (WAPE) of predicted for region = East"
    )
    assert (
        "on 120 of 480 rows" in risk.narrative
        and "fairness policy has warned since" in risk.narrative
    )


def test_a_check_planned_by_a_failed_run_reads_as_planned_not_an_error() -> None:
    from dagster_project.checks.risks import execution_status

    @dg.asset(key=KEY, check_specs=[dg.AssetCheckSpec("drift", asset=KEY)])
    def failing():
        raise dg.Failure("the build failed before any check ran")

    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize([failing], instance=instance, raise_on_error=False)
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([DRIFT])
        assert execution_status(latest[DRIFT]) not in {"SUCCEEDED", "FAILED", "NOT_JUDGED"}
