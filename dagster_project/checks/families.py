"""The check families every product gets, in the order they judge a write."""

import dagster as dg

from dagster_project.checks.freshness import EventFreshness
from dagster_project.checks.policies import Policies
from dagster_project.checks.quality.checks import QualityChecks
from dagster_project.checks.rules import ContractRules
from dagster_project.core.contracts import Contract
from dagster_project.products.product import CheckFamily, check_specs

# The quality score reads the contract rules' outcomes: rules come first.
FAMILIES: tuple[CheckFamily, ...] = (ContractRules(), Policies(), EventFreshness(), QualityChecks())


def check_keys(contract: Contract) -> list[dg.AssetCheckKey]:
    """The keys of every check a product's asset evaluates."""
    return [spec.key for spec in check_specs(FAMILIES, contract)]
