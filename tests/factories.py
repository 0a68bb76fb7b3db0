"""Small ODCS contracts for tests, valid and following every policy unless changed."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def bench_module(name: str) -> ModuleType:
    """The benchmark script bench/<name>.py (bench/ is no package) as a module."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # for dataclasses
    spec.loader.exec_module(module)
    return module


CONTRACT_FILES = sorted(
    [*REPO.glob("domains/*/contracts/*.odcs.yaml"), *REPO.glob("governance/contracts/*.odcs.yaml")]
)


def column(name: str, logical_type: str = "string", **fields: Any) -> dict[str, Any]:
    """One ODCS property, described (the description policy asks for it)."""
    return {"name": name, "logicalType": logical_type, "description": f"The {name}.", **fields}


def contract_document(
    properties: list[dict[str, Any]] | None = None,
    *,
    domain: str = "shop",
    product: str = "widgets",
    version: str = "1.0.0",
    write_mode: str | None = None,
    min_rows: int | None = None,
) -> dict[str, Any]:
    """A valid ODCS v3 document for `domain/product` that follows every policy."""
    properties = properties or [
        column("widget_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
        column("widget_name", required=True),
    ]
    schema: dict[str, Any] = {
        "name": product,
        "physicalType": "table",
        "description": f"Every {product} of the {domain} domain, one row each.",
        "properties": copy.deepcopy(properties),
    }
    if min_rows is not None:
        schema["quality"] = [
            {"type": "library", "metric": "rowCount", "mustBeGreaterOrEqualTo": min_rows}
        ]
    document: dict[str, Any] = {
        "apiVersion": "v3.2.0",
        "kind": "DataContract",
        "id": f"urn:test:{domain}:{product}",
        "name": product,
        "version": version,
        "status": "active",
        "domain": domain,
        "description": {"purpose": f"The {product} a test works with."},
        "team": {
            "name": "shop-team",
            "members": [{"username": "kim@shop.example", "role": "owner"}],
        },
        "slaProperties": [{"property": "latency", "value": 1, "unit": "d"}],
        "schema": [schema],
    }
    if write_mode is not None:
        document["customProperties"] = [{"property": "writeMode", "value": write_mode}]
    return document
