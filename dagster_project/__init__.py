"""Meshwork's self-serve platform: the public API that domains and governance build on.

A domain needs only this:

    from dagster_project import derived, domain_definitions, landing, sql

    defs = domain_definitions("sales", [landing("order_lines"), derived(...)],
                              contracts=Path(__file__).parent / "contracts")

Names are imported on first use (PEP 562), so `import dagster_project.app.cli` or a
question to the mesh does not pay for Dagster, MLflow and the rest up front. Nothing
outside the platform imports its modules directly (an import-linter contract).
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "dagster_project.core.contracts": [
        "Contract",
        "ContractError",
        "load_contract",
        "load_contracts",
        "parse_reference",
    ],
    "dagster_project.core.settings": [
        "Limits",
        "MeshSettings",
        "Settings",
        "get_limits",
        "get_settings",
    ],
    "dagster_project.core.credentials": ["mesh_secret"],
    "dagster_project.core.workspace": ["find_root"],
    "dagster_project.lake.storage": ["DateWindow", "Lake"],
    "dagster_project.lake.resource": ["MeshResource"],
    "dagster_project.ai": ["AIProvider", "Generation", "Provenance", "Task"],
    "dagster_project.ai.resource": ["AIResource"],
    "dagster_project.products.product": [
        "Product",
        "ProductRun",
        "Rows",
        "asset_key",
        "derived",
        "landing",
    ],
    "dagster_project.products.builder": ["column_schema"],
    "dagster_project.products.sql": ["sql"],
    "dagster_project.checks.families": ["check_keys"],
    "dagster_project.checks.freshness": ["judge_freshness"],
    "dagster_project.checks.risks": ["execution_status"],
    "dagster_project.checks.policies": [
        "ContractRegistry",
        "Policy",
        "PolicyResult",
        "evaluate_policies",
        "load_policies",
        "major",
        "policy_status",
    ],
    "dagster_project.checks.fairness": [
        "FairnessSpec",
        "FairnessThresholds",
        "error_disparity",
        "fairness_policy",
        "worst_error_gap",
    ],
    "dagster_project.checks.pii": ["classify_column"],
    "dagster_project.checks.profiling": ["ProductProfile", "profile_product"],
    "dagster_project.checks.quality.companion_contracts": ["discover_contracts"],
    "dagster_project.checks.quality.score": ["catalog_fields"],
    "dagster_project.ml.tracking": [
        "FairnessGate",
        "MLflowResource",
        "champion_challenger",
        "pinned",
    ],
    "dagster_project.ml.interval_model": ["IntervalModel"],
    "dagster_project.ml.retraining": ["retrain_on_check_warning", "weekly_retraining"],
    "dagster_project.metadata.semantics": ["SemanticLayer", "load_semantic_layer"],
    "dagster_project.metadata.lineage": ["product_lineage"],
    "dagster_project.metadata.discovery": [
        "SemanticIndex",
        "build_entries",
        "entries_hash",
        "load_vectors",
        "save_vectors",
    ],
    "dagster_project.metadata.doc_review": ["SuggestionStore", "suggest"],
    "dagster_project.access.http": ["BodyLimit"],
    "dagster_project.access.policy": [
        "AccessPolicy",
        "AuditRecord",
        "Decision",
        "GovernedReader",
        "audit_summary",
        "masked_document",
    ],
    "dagster_project.ask.narratives": [
        "InsightsRun",
        "change_sentence",
        "insights",
        "semantic_insights",
        "what_changed",
    ],
    "dagster_project.assembly.locations": ["domain_definitions"],
}
# Modules themselves: models pickle `interval_model` by value, so serving needs no Meshwork.
_SUBMODULES = {"interval_model": "dagster_project.ml.interval_model"}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted([*_MODULE_OF, *_SUBMODULES])


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value = import_module(_SUBMODULES[name])
    elif name in _MODULE_OF:
        value = getattr(import_module(_MODULE_OF[name]), name)
    else:
        raise AttributeError(f"module 'dagster_project' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
