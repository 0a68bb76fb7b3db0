"""The mesh's shared policies and the registry of published contract versions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dagster_project.checks.policies import (
    ContractRegistry,
    Policy,
    PolicyResult,
    evaluate_policies,
    load_policies,
    major,
)
from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from governance.policies import POLICIES
from tests.factories import column, contract_document

BLOCKING = ["owner", "description", "pii_classified", "naming", "sla", "breaking_change"]
POLICY_NAMES = [*BLOCKING, "fairness"]


def test_the_policies_are_registered_under_the_entry_point() -> None:
    assert [p.name for p in POLICIES] == POLICY_NAMES
    assert sorted(p.name for p in load_policies()) == sorted(POLICY_NAMES)


def test_every_demo_contract_follows_every_policy(demo_contracts: dict[str, Contract]) -> None:
    for contract in demo_contracts.values():
        for previous in (None, contract):
            results = evaluate_policies(contract, previous)
            assert list(results)[: len(BLOCKING)] == BLOCKING
            failing = {n: r.reason for n, r in results.items() if not r.passed and r.judged}
            assert failing == {}, contract.key
            if "fairness" in results:  # it reads the data, which is not given here
                assert not results["fairness"].judged


def test_the_demo_declares_segments_on_its_model_and_segment_outputs(
    demo_contracts: dict[str, Contract],
) -> None:
    declaring = {k for k, c in demo_contracts.items() if "fairness" in evaluate_policies(c, None)}
    assert declaring == {
        "inventory/demand_forecast",
        "customers/customer_segments",
        "dragracer/appearances",
    }


def test_the_base_test_contract_follows_every_policy() -> None:
    results = evaluate_policies(Contract(contract_document()), None)
    assert all(r.passed for r in results.values()), results


def _no_team(doc: dict[str, Any]) -> None:
    del doc["team"]


def _short_description(doc: dict[str, Any]) -> None:
    doc["schema"][0]["description"] = "Widgets."


def _undocumented_column(doc: dict[str, Any]) -> None:
    doc["schema"][0]["properties"].append({"name": "colour", "logicalType": "string"})


def _unclassified_email(doc: dict[str, Any]) -> None:
    doc["schema"][0]["properties"].append(column("email"))


def _unclassified_phone_number(doc: dict[str, Any]) -> None:
    doc["schema"][0]["properties"].append(column("contact_phone", classification="public"))


def _camel_case_column(doc: dict[str, Any]) -> None:
    doc["schema"][0]["properties"].append(column("unitPrice", "number"))


def _no_sla(doc: dict[str, Any]) -> None:
    del doc["slaProperties"]


@pytest.mark.parametrize(
    ("mutate", "policy", "reason"),
    [
        (_no_team, "owner", "no team or owner named"),
        (_short_description, "description", "at least 20 characters"),
        (_undocumented_column, "description", "columns without a description: colour"),
        (_unclassified_email, "pii_classified", "not classified: email"),
        (_unclassified_phone_number, "pii_classified", "not classified: contact_phone"),
        (_camel_case_column, "naming", "not snake_case: unitPrice"),
        (_no_sla, "sla", "no freshness/latency SLA"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_policy_fails_on_a_crafted_contract(
    mutate: Callable[[dict[str, Any]], None], policy: str, reason: str
) -> None:
    doc = contract_document()
    mutate(doc)
    results = evaluate_policies(Contract(doc), None)
    assert not results[policy].passed
    assert reason in results[policy].reason
    # Only the policy the change is about fails.
    assert [name for name, r in results.items() if not r.passed] == [policy]


def test_a_classified_email_column_passes() -> None:
    doc = contract_document()
    doc["schema"][0]["properties"].append(column("email", classification="pii"))
    result = evaluate_policies(Contract(doc), None)["pii_classified"]
    assert result.passed
    assert result.reason == "PII classified: email"


# -- breaking changes -------------------------------------------------------------------------

V1_COLUMNS = [
    column("widget_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
    column("widget_name", required=True),
    column("weight", "number"),
]


def widgets(version: str, columns: list[dict[str, Any]]) -> Contract:
    return Contract(contract_document(columns, version=version))


def breaking_change(contract: Contract, previous: Contract | None) -> PolicyResult:
    return evaluate_policies(contract, previous)["breaking_change"]


def test_the_first_version_is_never_a_breaking_change() -> None:
    assert breaking_change(widgets("1.0.0", V1_COLUMNS), None).passed


def test_adding_a_column_in_a_minor_version_passes() -> None:
    v1 = widgets("1.0.0", V1_COLUMNS)
    assert breaking_change(widgets("1.1.0", [*V1_COLUMNS, column("colour")]), v1).passed


@pytest.mark.parametrize(
    ("columns", "change"),
    [
        (V1_COLUMNS[:2], "removed weight"),
        ([*V1_COLUMNS[:2], column("weight", "string")], "retyped weight number→string"),
    ],
    ids=["removed", "retyped"],
)
def test_breaking_change_needs_a_major_version(columns: list[dict], change: str) -> None:
    v1 = widgets("1.0.0", V1_COLUMNS)
    minor = breaking_change(widgets("1.1.0", columns), v1)
    assert not minor.passed
    assert change in minor.reason
    assert "needs a major version bump" in minor.reason
    bumped = breaking_change(widgets("2.0.0", columns), v1)
    assert bumped.passed
    assert "1.0.0 → 2.0.0" in bumped.reason


def test_a_policy_that_raises_fails_instead_of_passing() -> None:
    def broken(_contract: Contract, _previous: Contract | None) -> PolicyResult:
        raise RuntimeError("boom")

    result = Policy("broken", "raises", broken).evaluate(Contract(contract_document()), None)
    assert not result.passed
    assert result.reason == "policy raised RuntimeError: boom"


# -- the registry of published contracts ------------------------------------------------------


def test_registry_orders_versions_numerically(mesh_home: MeshSettings) -> None:
    registry = ContractRegistry(mesh_home)
    assert registry.versions("shop/widgets") == []
    assert registry.latest("shop/widgets") is None
    for version in ["1.9.0", "1.10.0", "1.2.0", "0.9.12"]:
        registry.publish(widgets(version, V1_COLUMNS))
    assert registry.versions("shop/widgets") == ["0.9.12", "1.2.0", "1.9.0", "1.10.0"]
    latest = registry.latest("shop/widgets")
    assert latest is not None
    assert latest.version == "1.10.0"
    assert latest.key == "shop/widgets"


def test_registry_round_trips_the_published_document(mesh_home: MeshSettings) -> None:
    registry = ContractRegistry(mesh_home)
    contract = widgets("1.0.0", V1_COLUMNS)
    registry.publish(contract)
    loaded = registry.load("shop/widgets", "1.0.0")
    assert loaded.document == contract.document
    assert loaded.primary_key == ["widget_id"]
    # Publishing the same version again replaces it; other products are separate.
    registry.publish(contract)
    registry.publish(Contract(contract_document(product="gadgets")))
    assert registry.versions("shop/widgets") == ["1.0.0"]
    assert registry.versions("shop/gadgets") == ["1.0.0"]


def test_major() -> None:
    assert major("2.1.0") == 2
    assert major("v3.0.0") == 3
    assert major("1.10.0") == 1
    assert major("2.0.0-rc.1") == 2
    assert major("") == 0


def test_versions_sort_by_semver_precedence(mesh_home: MeshSettings) -> None:
    registry = ContractRegistry(mesh_home)
    published = ["1.10.0", "1.0.0", "1.0.0-rc.1", "1.0.0-alpha", "1.0.0-rc.2", "2.0.0+build.7"]
    for version in published:
        registry.publish(Contract(contract_document(version=version)))
    assert registry.versions("shop/widgets") == [
        "1.0.0-alpha",
        "1.0.0-rc.1",
        "1.0.0-rc.2",
        "1.0.0",
        "1.10.0",
        "2.0.0+build.7",
    ]
    assert registry.latest("shop/widgets").version == "2.0.0+build.7"


def test_the_sla_policy_says_which_column_judges_freshness_or_that_none_does() -> None:
    plain = evaluate_policies(Contract(contract_document()), None)["sla"]
    assert plain.passed and "not judged: no event-time column" in plain.reason
    doc = contract_document(
        [
            column("widget_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("made_at", "timestamp"),
        ]
    )
    doc["slaProperties"][0]["element"] = "widgets.made_at"
    timed = evaluate_policies(Contract(doc), None)["sla"]
    assert (
        timed.passed
        and timed.reason == "freshness SLA: data at most 1 day(s) old, judged by made_at"
    )
