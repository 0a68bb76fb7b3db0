"""Every code location of workspace.yaml loads, and its products carry what the UI shows."""

from __future__ import annotations

import dagster as dg
import pytest

from dagster_project.checks.fairness import declares_fairness
from dagster_project.checks.quality.checks import quality_check_specs
from dagster_project.checks.rules import rules_for
from dagster_project.core.contracts import Contract
from dagster_project.core.workspace import load_definitions, mesh_assets, read_workspace

LOCATIONS = ["sales", "inventory", "customers", "governance", "dragracer"]
POLICY_CHECKS = {
    "policy_owner",
    "policy_description",
    "policy_pii_classified",
    "policy_naming",
    "policy_sla",
    "policy_breaking_change",
}


@pytest.fixture(scope="module")
def definitions() -> dict[str, dg.Definitions]:
    return load_definitions()


def product_assets(defs: dg.Definitions) -> list[dg.AssetsDefinition]:
    return [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]


def test_workspace_lists_every_location() -> None:
    assert [loc.name for loc in read_workspace()] == LOCATIONS


@pytest.mark.parametrize("name", LOCATIONS)
def test_location_loads(definitions: dict[str, dg.Definitions], name: str) -> None:
    defs = definitions[name]
    dg.Definitions.validate_loadable(defs)
    assert product_assets(defs)


def test_every_product_key_is_defined_in_exactly_one_location(
    definitions: dict[str, dg.Definitions], demo_contracts: dict[str, Contract]
) -> None:
    owners: dict[str, list[str]] = {}
    for name, defs in definitions.items():
        for asset in product_assets(defs):
            owners.setdefault(asset.key.to_user_string(), []).append(name)
    assert {k: v for k, v in owners.items() if k in demo_contracts} == {
        key: [key.split("/")[0]] for key in demo_contracts
    }
    # Derived products (synthetic copies, masked shared copies, ...) have one owner too.
    assert all(len(v) == 1 for v in owners.values())


def test_customers_declares_order_lines_as_an_external_spec(
    definitions: dict[str, dg.Definitions],
) -> None:
    customers = definitions["customers"]
    order_lines = dg.AssetKey(["sales", "order_lines"])
    specs = [a for a in customers.assets or [] if isinstance(a, dg.AssetSpec)]
    assert [s.key for s in specs] == [order_lines]
    graph = customers.resolve_asset_graph()
    assert not graph.get(order_lines).is_materializable
    segments = graph.get(dg.AssetKey(["customers", "customer_segments"]))
    assert order_lines in segments.parent_keys


@pytest.mark.parametrize("name", LOCATIONS)
def test_automation_sensor_starts_running(
    definitions: dict[str, dg.Definitions], name: str
) -> None:
    sensors = [
        s
        for s in definitions[name].sensors or []
        if isinstance(s, dg.AutomationConditionSensorDefinition)
    ]
    assert [s.name for s in sensors] == [f"{name}_automation"]
    assert sensors[0].default_status == dg.DefaultSensorStatus.RUNNING


@pytest.mark.parametrize("name", LOCATIONS)
def test_runs_execute_in_one_process(definitions: dict[str, dg.Definitions], name: str) -> None:
    """No process per step, each re-importing the location (see domain_definitions)."""
    job = definitions[name].resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == dg.in_process_executor.name


@pytest.mark.parametrize("name", LOCATIONS)
def test_check_alert_sensor_starts_running(
    definitions: dict[str, dg.Definitions], name: str
) -> None:
    sensor = definitions[name].resolve_sensor_def(f"{name}_check_alerts")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 30


@pytest.mark.parametrize("name", ["sales", "inventory", "customers"])
def test_domain_landing_sensor_starts_running(
    definitions: dict[str, dg.Definitions], name: str
) -> None:
    sensor = definitions[name].resolve_sensor_def(f"{name}_landing_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_every_product_asset_carries_checks_schema_owners_and_freshness(
    definitions: dict[str, dg.Definitions], demo_contracts: dict[str, Contract]
) -> None:
    assets = [a for a in mesh_assets(definitions) if a.key.to_user_string() in demo_contracts]
    assert sorted(a.key.to_user_string() for a in assets) == sorted(demo_contracts)
    for asset in assets:
        contract = demo_contracts[asset.key.to_user_string()]
        spec = next(iter(asset.specs))

        checks = {spec.name: spec for spec in asset.check_specs}
        contract_checks = {f"contract_{rule}" for rule in rules_for(contract)}
        quality = {s.name for s in quality_check_specs(contract, asset.key)}  # anomalies, drift
        # freshness from the data where the contract has an event time (order_date...)
        quality |= {"event_freshness"} if contract.event_time else set()
        # the fairness policy, a warning, where the contract declares segments and outputs
        quality |= {"policy_fairness"} if declares_fairness(contract) else set()
        assert set(checks) == contract_checks | POLICY_CHECKS | quality, contract.key
        refs = contract.foreign_keys
        warn_only = {"contract_referential_integrity"} if refs and all(
            r.severity == "warning" for r in refs
        ) else set()  # fmt: skip
        assert all(checks[n].blocking for n in contract_checks - warn_only), contract.key
        assert not any(checks[n].blocking for n in warn_only), contract.key
        assert not any(checks[name].blocking for name in quality), contract.key

        schema = spec.metadata["dagster/column_schema"]
        assert isinstance(schema, dg.TableSchema)
        assert [c.name for c in schema.columns] == contract.column_names
        assert [c.type for c in schema.columns] == [c.logical_type for c in contract.columns]

        assert spec.owners == [contract.owner], contract.key
        assert contract.freshness is not None
        assert spec.freshness_policy == dg.FreshnessPolicy.time_window(
            fail_window=contract.freshness.max_age
        ), contract.key
        assert spec.description == contract.description
        assert spec.group_name == contract.domain
