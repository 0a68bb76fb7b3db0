"""The mesh's shared policies, written once and applied to every product.

Registered under the `meshwork.policies` entry point (see pyproject.toml): every
domain's code location runs them as asset checks on its own products, and the
governance location scores all products against them.
"""

from __future__ import annotations

import re
from datetime import timedelta

import polars as pl

from dagster_project import (
    Contract,
    FairnessThresholds,
    Policy,
    PolicyResult,
    classify_column,
    fairness_policy,
    major,
)

# Fairness across the segments a contract declares (dagster_project.checks.fairness): the
# mesh-wide thresholds, which a contract's own `fairness` custom property may tighten.
FAIRNESS = FairnessThresholds(maxErrorGap=0.25, maxRateGap=0.20, minRows=30)
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")
# Column names that usually hold personal data.
PII_NAME = re.compile(
    r"(^|_)(e_?mail|phone|mobile|full_?name|first_?name|last_?name|surname|birth|dob|address|"
    r"street|zip|postcode|ssn|passport|iban|card_?number|ip_?address)(_|$)"
)


def owner_present(contract: Contract, _previous: Contract | None) -> PolicyResult:
    owner = contract.owner
    return PolicyResult(bool(owner), f"owned by {owner}" if owner else "no team or owner named")


def description_present(contract: Contract, _previous: Contract | None) -> PolicyResult:
    undocumented = [c.name for c in contract.columns if not c.description.strip()]
    if len(contract.description.strip()) < 20:
        return PolicyResult(False, "the product needs a description of at least 20 characters")
    if undocumented:
        return PolicyResult(False, f"columns without a description: {', '.join(undocumented)}")
    return PolicyResult(True, "product and every column described")


def pii_classified(
    contract: Contract, _previous: Contract | None, sample: pl.DataFrame | None = None
) -> PolicyResult:
    """Columns that look like personal data, by name or by their values in `sample`
    (emails, phones, IBANs, cards, IPs, names, birth dates: dagster_project.checks.pii), must
    be classified in the contract."""
    unclassified = [c.name for c in contract.columns if PII_NAME.search(c.name) and not c.is_pii]
    by_values = []
    if sample is not None:
        for c in contract.columns:
            # A classification of any kind (e.g. `internal` for work emails of product
            # owners) is a human decision about the column: values alone do not overrule it.
            if c.classification or c.name in unclassified or c.name not in sample.columns:
                continue
            finding = classify_column(c.name, sample[c.name])
            if finding is not None:
                unclassified.append(c.name)
                by_values.append(finding.describe())
    if unclassified:
        found = f" ({'; '.join(by_values)})" if by_values else ""
        return PolicyResult(
            False,
            "columns that look like personal data are not classified: "
            + ", ".join(unclassified)
            + found
            + "; give each a classification in the contract (pii, or public/internal when "
            "it is not personal)",
        )
    pii = contract.pii_columns
    checked = " (names and values checked)" if sample is not None and sample.height else ""
    return PolicyResult(
        True, (f"PII classified: {', '.join(pii)}" if pii else "no PII columns") + checked
    )


def naming_convention(contract: Contract, _previous: Contract | None) -> PolicyResult:
    names = [contract.domain, contract.product, *contract.column_names]
    bad = [n for n in names if not SNAKE_CASE.match(n)]
    return PolicyResult(
        not bad,
        f"not snake_case: {', '.join(bad)}"
        if bad
        else "domain, product and columns are snake_case",
    )


def sla_present(contract: Contract, _previous: Contract | None) -> PolicyResult:
    fresh = contract.freshness
    if fresh is None:
        return PolicyResult(
            False,
            "no freshness/latency SLA in slaProperties; add one, e.g. "
            f"{{property: latency, value: 1, unit: d, element: {contract.product}.<time column>}}",
        )
    # freshness is the age of the data: say which column judges it, or that none does
    column = contract.event_time
    judged = (
        f"judged by {column}"
        if column
        else "not judged: no event-time column (the SLA's element or eventTime)"
    )
    return PolicyResult(
        True, f"freshness SLA: data at most {_duration(fresh.max_age)} old, {judged}"
    )


def _duration(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours >= 24 and hours % 24 == 0:
        return f"{hours / 24:g} day(s)"
    return f"{hours:g} hour(s)"


def no_breaking_change(contract: Contract, previous: Contract | None) -> PolicyResult:
    if previous is None:
        return PolicyResult(True, "first published version")
    before = {c.name: c.logical_type for c in previous.columns}
    after = {c.name: c.logical_type for c in contract.columns}
    removed = [n for n in before if n not in after]
    retyped = [
        f"{n} {before[n]}→{after[n]}" for n in before if n in after and before[n] != after[n]
    ]
    if not (removed or retyped):
        return PolicyResult(True, f"compatible with published {previous.version}")
    change = "; ".join(
        filter(
            None,
            [
                removed and f"removed {', '.join(removed)}",
                retyped and f"retyped {', '.join(retyped)}",
            ],
        )
    )
    if major(contract.version) > major(previous.version):
        return PolicyResult(
            True,
            f"breaking change ({change}) with a major version bump "
            f"{previous.version} → {contract.version}",
        )
    return PolicyResult(
        False,
        f"breaking change ({change}) against published "
        f"{previous.version} needs a major version bump, "
        f"not {contract.version}",
    )


POLICIES = [
    Policy("owner", "The product names an owning team or person", owner_present),
    Policy("description", "The product and every column are described", description_present),
    Policy(
        "pii_classified",
        "Columns that look like personal data (by name or values) are classified",
        pii_classified,
        uses_data=True,
    ),
    Policy("naming", "Domain, product and column names are snake_case", naming_convention),
    Policy("sla", "The contract states a freshness SLA", sla_present),
    Policy(
        "breaking_change",
        "Removing or retyping a column needs a major version bump",
        no_breaking_change,
    ),
    fairness_policy(FAIRNESS),
]
