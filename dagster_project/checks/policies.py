"""Federated governance: policies as code, applied to every product in its own location.

The platform defines what a policy is and how it runs; the governance code location
writes the policies once and registers them under the `meshwork.policies` entry
point, so each domain location picks them up without importing governance code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

import dagster as dg
import polars as pl
import yaml

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.products.product import CheckFamily, FamilyResult, Written

ENTRY_POINT_GROUP = "meshwork.policies"
POLICY_SAMPLE = 500  # rows of a write that data-aware policies (PII by values) look at


@dataclass(frozen=True)
class PolicyResult:
    passed: bool
    reason: str


@dataclass(frozen=True)
class Policy:
    """A rule every product must follow. `check` sees the contract and the last
    published version of it (None before the first publication); with `uses_data` it
    also gets a sample of the product's rows (a polars DataFrame, or None if unknown)."""

    name: str
    description: str
    check: Callable[..., PolicyResult]
    uses_data: bool = False

    def evaluate(
        self, contract: Contract, previous: Contract | None, sample: pl.DataFrame | None = None
    ) -> PolicyResult:
        try:
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
        return Contract(yaml.safe_load(text), f"registry:{key}@{version}")

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


def evaluate_policies(
    contract: Contract, previous: Contract | None, sample: pl.DataFrame | None = None
) -> dict[str, PolicyResult]:
    """Every policy's verdict; `sample` (some of the product's rows) feeds the policies
    that look at data, such as PII detection by values."""
    return {p.name: p.evaluate(contract, previous, sample) for p in load_policies()}


def policy_check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            name=f"policy_{p.name}",
            asset=asset_key,
            description=p.description,
            metadata={"policy": p.name},
        )
        for p in load_policies()
    ]


def policy_check_results(
    results: dict[str, PolicyResult], asset_key: dg.AssetKey
) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=f"policy_{name}",
            passed=r.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=r.reason,
            metadata={"reason": r.reason},
        )
        for name, r in results.items()
    ]


class Policies(CheckFamily):
    """The mesh's shared policies (registered by governance under `meshwork.policies`),
    applied to every product in its own location; a version passing them is published
    to the contract registry."""

    name = "policies"

    def specs(self, contract: Contract, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
        return policy_check_specs(key)

    def evaluate(self, written: Written) -> FamilyResult:
        contract = written.contract
        registry = ContractRegistry(written.lake.settings)
        sample = written.frame.head(POLICY_SAMPLE)
        results = evaluate_policies(contract, registry.latest(contract.key), sample)
        if results.get("breaking_change") is None or results["breaking_change"].passed:
            registry.publish(contract)
        return FamilyResult(policy_check_results(results, written.key))
