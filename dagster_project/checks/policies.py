"""Federated governance: policies as code, applied to every product in its own location.

The platform defines what a policy is and how it runs; the governance code location
writes the policies once and registers them under the `meshwork.policies` entry
point, so each domain location picks them up without importing governance code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any

import dagster as dg
import polars as pl
import yaml

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.core.yamlfile import load_yaml
from dagster_project.lake.storage import Lake
from dagster_project.products.product import CheckFamily, FamilyResult, Written

ENTRY_POINT_GROUP = "meshwork.policies"
POLICY_SAMPLE = 500  # rows of a write that data-aware policies (PII by values) look at


@dataclass(frozen=True)
class PolicyResult:
    """A verdict; `judged=False` when there was too little to judge (never a pass)."""

    passed: bool
    reason: str
    metadata: dict[str, Any] = field(default_factory=dict)
    judged: bool = True


@dataclass(frozen=True)
class Policy:
    """A rule products must follow. `check` sees the contract and the last published
    version of it (None before the first publication); with `uses_data` it also gets a
    sample of the product's rows (a polars DataFrame, or None if unknown), with
    `uses_lake` the lake to read the whole product and its neighbours from. `applies`
    limits the policy to the contracts that ask for it (e.g. declare segments);
    `severity` is `error` (blocking) or `warn`."""

    name: str
    description: str
    check: Callable[..., PolicyResult]
    uses_data: bool = False
    uses_lake: bool = False
    applies: Callable[[Contract], bool] | None = None
    severity: str = "error"

    def applies_to(self, contract: Contract) -> bool:
        return self.applies is None or self.applies(contract)

    def evaluate(
        self,
        contract: Contract,
        previous: Contract | None,
        sample: pl.DataFrame | None = None,
        lake: Lake | None = None,
    ) -> PolicyResult:
        try:
            if self.uses_lake:
                if lake is None:
                    return PolicyResult(
                        False, "not judged: the product's data is unknown", {}, False
                    )
                return self.check(contract, previous, lake)
            if self.uses_data:
                return self.check(contract, previous, sample)
            return self.check(contract, previous)
        except Exception as exc:  # a broken policy must not pass silently
            return PolicyResult(False, f"policy raised {type(exc).__name__}: {exc}")


@cache
def load_policies() -> tuple[Policy, ...]:
    """Every policy registered under the `meshwork.policies` entry point."""
    policies: list[Policy] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        policies.extend(ep.load())
    return tuple(policies)


class ContractRegistry:
    """Published contract versions, kept in the lake's registry zone."""

    def __init__(self, settings: MeshSettings):
        self.settings = settings

    def _folder(self, key: str) -> str:
        return self.settings.registry_uri("contracts", *key.split("/"))

    def versions(self, key: str) -> list[str]:
        names = self.settings.files.list_files(self._folder(key))
        versions = [n.rsplit("/", 1)[-1].removesuffix(".yaml") for n in names]
        return sorted(versions, key=_semver)

    def load(self, key: str, version: str) -> Contract:
        text = self.settings.files.read_text(f"{self._folder(key)}/{version}.yaml")
        return Contract(load_yaml(text), f"registry:{key}@{version}")

    def latest(self, key: str) -> Contract | None:
        versions = self.versions(key)
        return self.load(key, versions[-1]) if versions else None

    def publish(self, contract: Contract) -> None:
        uri = f"{self._folder(contract.key)}/{contract.version}.yaml"
        self.settings.files.write_text(uri, yaml.safe_dump(contract.document, sort_keys=False))


def _semver(version: str) -> tuple:
    """Sort key by Semantic Versioning precedence: 1.0.0-rc.1 < 1.0.0 < 1.0.1 < 1.10.0;
    build metadata (+...) is ignored; non-numeric pieces of the core count as 0."""
    core, _, pre = version.lstrip("v").split("+", 1)[0].partition("-")
    numbers = tuple(_leading_int(piece) for piece in core.split("."))
    if not pre:
        return (numbers, 1, ())
    # Numeric identifiers sort before alphanumeric ones, numerically; the rest as text.
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (numbers, 0, ids)


def _leading_int(piece: str) -> int:
    digits = "".join(ch for ch in piece if ch.isdigit())
    return int(digits) if digits else 0


def major(version: str) -> int:
    numbers = _semver(version)[0] if version else ()
    return numbers[0] if numbers else 0


def applicable_policies(contract: Contract) -> list[Policy]:
    return [p for p in load_policies() if p.applies_to(contract)]


def evaluate_policies(
    contract: Contract,
    previous: Contract | None,
    sample: pl.DataFrame | None = None,
    lake: Lake | None = None,
) -> dict[str, PolicyResult]:
    """Every applicable policy's verdict; `sample` (some of the product's rows) feeds the
    policies that look at values, such as PII detection, `lake` those that read the
    whole product, such as fairness across segments."""
    return {
        p.name: p.evaluate(contract, previous, sample, lake) for p in applicable_policies(contract)
    }


def policy_status(policy: Policy, result: PolicyResult) -> str:
    """passed, failed (a blocking policy), warning, or not judged."""
    if not result.judged:
        return "not judged"
    if result.passed:
        return "passed"
    return "failed" if policy.severity == "error" else "warning"


def policy_check_specs(contract: Contract, asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            name=f"policy_{p.name}",
            asset=asset_key,
            description=p.description,
            metadata={"policy": p.name},
        )
        for p in applicable_policies(contract)
    ]


def policy_check_results(
    results: dict[str, PolicyResult], asset_key: dg.AssetKey
) -> list[dg.AssetCheckResult]:
    policies = {p.name: p for p in load_policies()}
    return [_check_result(policies[name], r, asset_key) for name, r in results.items()]


def _check_result(policy: Policy, r: PolicyResult, key: dg.AssetKey) -> dg.AssetCheckResult:
    metadata: dict[str, Any] = {"reason": r.reason, **r.metadata}
    if not r.judged:  # the mark `risks.execution_status` reads as NOT_JUDGED
        metadata["skipped"] = r.reason
    blocking = policy.severity == "error" and r.judged  # not judged is never an error
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=f"policy_{policy.name}",
        passed=r.passed and r.judged,
        severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
        description=r.reason,
        metadata=metadata,
    )


class Policies(CheckFamily):
    """The mesh's shared policies (registered by governance under `meshwork.policies`),
    applied to every product in its own location; a version passing them is published
    to the contract registry."""

    name = "policies"

    def specs(self, contract: Contract, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
        return policy_check_specs(contract, key)

    def evaluate(self, written: Written) -> FamilyResult:
        contract = written.contract
        registry = ContractRegistry(written.lake.settings)
        sample = written.frame.head(POLICY_SAMPLE)
        results = evaluate_policies(contract, registry.latest(contract.key), sample, written.lake)
        if results.get("breaking_change") is None or results["breaking_change"].passed:
            registry.publish(contract)
        return FamilyResult(policy_check_results(results, written.key))
