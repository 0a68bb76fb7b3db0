"""The contracts of the mesh's products, with the generated `<product>_anomalies` companions.

A contract that switches on `anomalyDetection` gets a companion product for triage, with
a contract generated from the parent's (same domain, owner, SLA and version; the parent's
key, partition, group and measure columns plus `anomaly_score`, `detector`, `reason`,
`status`, `detected_at`), validated against the ODCS schema like any other. This module
holds only the contracts, without Dagster or the detectors, so that reading the mesh's
contracts (ask, search, the access policy) starts fast; `companions` builds the products.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from dagster_project.checks.quality.config import quality_config
from dagster_project.checks.quality.features import ALL_ROWS, FeatureProfile
from dagster_project.core.contracts import Contract, ContractError, load_contracts
from dagster_project.core.workspace import location_folder, read_workspace

SUFFIX = "_anomalies"
log = logging.getLogger("meshwork")
STATUSES = ("open", "confirmed", "dismissed")
_ADDED = [
    {
        "name": "anomaly_score",
        "logicalType": "number",
        "description": "How anomalous the row is: the detector's score over its alarm "
        "threshold (1 = just flagged, 3 = three times as far).",
        "required": True,
        "logicalTypeOptions": {"minimum": 0},
    },
    {
        "name": "detector",
        "logicalType": "string",
        "description": "Detector that flagged the row (chosen per product without labels).",
        "required": True,
    },
    {
        "name": "reason",
        "logicalType": "string",
        "description": "Why the row was flagged, in plain words: which values are how far off.",
        "required": True,
    },
    {
        "name": "status",
        "logicalType": "string",
        "description": "Triage status: open until someone confirms or dismisses it; "
        "re-runs keep it.",
        "required": True,
        "enum": [{"value": s} for s in STATUSES],
    },
    {
        "name": "detected_at",
        "logicalType": "timestamp",
        "description": "When the row was first flagged (UTC).",
        "required": True,
    },
]


def triage_columns(contract: Contract, profile: FeatureProfile) -> list[str]:
    """Columns of the parent kept beside each flagged row, for triage."""
    keep = [*contract.primary_key]
    if contract.partition_column:
        keep.append(contract.partition_column)
    keep += [g for g in profile.groups if g != ALL_ROWS]
    keep += [m.name for m in profile.measures]
    keep += [d.column for d in profile.derivations]
    return list(dict.fromkeys(keep))


def anomalies_document(parent: Contract) -> dict[str, Any]:
    """The ODCS document of `parent`'s anomalies product."""
    config = quality_config(parent).anomaly
    profile = FeatureProfile.for_contract(parent, config)
    properties = [_copied(parent, name) for name in triage_columns(parent, profile)]
    source = parent.document
    name = f"{parent.product}{SUFFIX}"
    document = {
        "apiVersion": source["apiVersion"],
        "kind": "DataContract",
        "id": f"{source['id']}{SUFFIX}",
        "name": f"{source.get('name', parent.product)} anomalies",
        "version": parent.version,
        "status": parent.status or "active",
        "domain": parent.domain,
        "tags": [*parent.tags[:3], "quality", "anomalies"],
        "description": {
            "purpose": f"Rows of {parent.key} flagged as anomalous by its anomalies check, "
            "with score, plain-language reason and triage status.",
            "usage": "Triage: review open rows and set status to confirmed or dismissed.",
        },
        "customProperties": [
            {
                "property": "writeMode",
                "value": "partition_overwrite" if parent.partition_column else "merge",
            },
            {"property": "generatedFrom", "value": parent.key},
        ],
        "schema": [
            {
                "name": name,
                "physicalType": "table",
                "businessName": f"{source.get('name', parent.product)} anomalies",
                "description": f"Anomalous rows of {parent.key}, worst first, for triage.",
                # no anomalies is the good case: an empty table is valid
                "quality": [{"type": "library", "metric": "rowCount", "mustBeGreaterOrEqualTo": 0}],
                "properties": properties + copy.deepcopy(_ADDED),
            }
        ],
    }
    for field in ("team", "slaProperties"):
        if field in source:
            document[field] = copy.deepcopy(source[field])
    return document


def _copied(parent: Contract, name: str) -> dict[str, Any]:
    column = parent.column(name)
    prop: dict[str, Any] = {
        "name": name,
        "logicalType": column.logical_type,
        "description": column.description or f"{name} of the flagged row.",
        "required": column.required,
    }
    if column.primary_key:
        prop |= {"primaryKey": True, "primaryKeyPosition": column.prop.primaryKeyPosition or 1}
    if column.partitioned:
        prop |= {"partitioned": True, "partitionKeyPosition": 1}
    if column.classification:
        prop["classification"] = column.classification
    return prop


@cache
def anomalies_contract(parent: Contract) -> Contract:
    where = f"<generated from {parent.path or parent.key}>"
    return Contract(anomalies_document(parent), where)


def with_companions(contracts: Mapping[str, Contract]) -> dict[str, Contract]:
    """`contracts` (by product name) plus the generated companions of those that ask."""
    found = dict(contracts)
    for contract in contracts.values():
        if quality_config(contract).anomaly:
            companion = anomalies_contract(contract)
            found[companion.product] = companion
    return found


def discover_contracts(
    exclude: tuple[str, ...] = (), path: Path | None = None, *, strict: bool = False
) -> list[Contract]:
    """Every product contract of the workspace's locations (`<location>/contracts/`), with
    the generated companions (e.g. `<product>_anomalies`) of those that ask. A location
    with a broken contract is left out with a warning (its own location fails to load
    and says why), so one domain's typo never stops the others; `strict` raises instead."""
    contracts: list[Contract] = []
    for location in read_workspace(path):
        if location.name in exclude:
            continue
        try:
            found = load_contracts(location_folder(location) / "contracts")
        except (ContractError, ModuleNotFoundError) as exc:
            if strict:
                raise
            log.warning(f"location {location.name} left out of the mesh's contracts: {exc}")
            continue
        contracts.extend(with_companions(found).values())
    return contracts
