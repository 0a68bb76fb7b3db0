"""Suggested contract updates from generated documentation, and their review.

A suggestion fills one empty field of a product's ODCS contract — `description.usage`,
`description.limitations`, the schema's `context.verifiedStatements` (canonical
questions) or a column's `description` — and is kept only if the contract with it still
validates against the ODCS schema. Suggestions live under
`MESH_HOME/docs/suggestions/<domain>/<product>.yaml` with their provenance and status
(pending, accepted, edited, rejected). Accepting one writes it into the contract file
(comments and layout kept, patch version bumped) — never over text a person wrote.
"""

from __future__ import annotations

import copy
import hashlib
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

from dagster_project.core.contracts import Contract, ContractError, load_contract, validate_document
from dagster_project.core.settings import MeshSettings
from dagster_project.core.yamlfile import load_yaml

PENDING, ACCEPTED, EDITED, REJECTED = "pending", "accepted", "edited", "rejected"


@dataclass
class Suggestion:
    product: str  # domain/product
    field: str  # description.usage | description.limitations | context.questions | column:<c>
    value: str | list[str]
    provenance: dict[str, Any]
    status: str = PENDING
    reviewed_at: str | None = None
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = hashlib.sha256(f"{self.product}|{self.field}".encode()).hexdigest()[:10]

    @property
    def label(self) -> str:
        if self.field.startswith("column:"):
            return f"{self.product}.{self.field.removeprefix('column:')} description"
        return f"{self.product} {self.field}"


# -- fields ------------------------------------------------------------------------------
def current_value(document: dict[str, Any], field_name: str) -> Any:
    schema = document["schema"][0]
    if field_name.startswith("column:"):
        column = _column(schema, field_name.removeprefix("column:"))
        return column.get("description") if column else None
    if field_name == "context.questions":
        context = schema.get("context")
        return context if context else None
    section, key = field_name.split(".")
    return (document.get(section) or {}).get(key)


def _column(schema: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in schema.get("properties") or [] if p.get("name") == name), None)


def set_value(document: Any, field_name: str, value: Any) -> None:
    """Write one suggestion into a contract document (plain or ruamel)."""
    schema = document["schema"][0]
    if field_name.startswith("column:"):
        column = _column(schema, field_name.removeprefix("column:"))
        if column is None:
            raise KeyError(f"no column {field_name.removeprefix('column:')}")
        column["description"] = value
    elif field_name == "context.questions":
        schema["context"] = {"verifiedStatements": [{"question": q} for q in value]}
    else:
        section, key = field_name.split(".")
        if document.get(section) is None:
            document[section] = {}
        document[section][key] = value


def suggest(
    contract: Contract, proposals: dict[str, Any], provenance: dict[str, Any]
) -> list[Suggestion]:
    """Suggestions for the proposals whose field is empty in the contract and that keep it
    ODCS-valid (`proposals`: field → text, or list of questions for context.questions)."""
    found = []
    for field_name, value in proposals.items():
        if not value or current_value(contract.document, field_name):
            continue  # nothing to say, or a person already wrote it
        trial = copy.deepcopy(contract.document)
        set_value(trial, field_name, value)
        try:
            validate_document(trial, contract.path or contract.key)
        except ContractError:
            continue
        found.append(Suggestion(contract.key, field_name, value, provenance))
    return found


# -- the store -----------------------------------------------------------------------------
class SuggestionStore:
    def __init__(self, settings: MeshSettings):
        self.settings = settings

    def uri(self, product: str) -> str:
        domain, name = product.split("/")
        return self.settings.uri("docs", "suggestions", domain, f"{name}.yaml")

    def load(self, product: str) -> list[Suggestion]:
        raw = load_yaml(self.settings.files.read_text_or(self.uri(product), "")) or []
        return [Suggestion(**suggestion) for suggestion in raw]

    def save(self, product: str, suggestions: list[Suggestion]) -> None:
        rows = [asdict(s) for s in suggestions]
        self.settings.files.write_text(self.uri(product), yaml.safe_dump(rows, sort_keys=False))

    def products(self) -> list[str]:
        root = self.settings.uri("docs", "suggestions")
        keys = []
        for domain in self.settings.files.list_dirs(root):
            for uri in self.settings.files.list_files(f"{root}/{domain}"):
                name = uri.rsplit("/", 1)[-1]
                if name.endswith(".yaml"):
                    keys.append(f"{domain}/{name.removesuffix('.yaml')}")
        return sorted(keys)

    def merge(self, product: str, fresh: list[Suggestion]) -> list[Suggestion]:
        """New suggestions replace pending ones; decisions stay (a rejected text is not
        proposed again unless the proposal changed)."""
        kept = {s.id: s for s in self.load(product)}
        merged = []
        for s in fresh:
            old = kept.get(s.id)
            if old and old.status != PENDING and (old.status != REJECTED or old.value == s.value):
                merged.append(old)
            else:
                merged.append(s)
        decided = [
            s for s in kept.values() if s.status != PENDING and s.id not in {m.id for m in merged}
        ]
        result = merged + decided
        self.save(product, result)
        return result

    def pending(self, product: str | None = None) -> list[Suggestion]:
        products = [product] if product else self.products()
        return [s for p in products for s in self.load(p) if s.status == PENDING]

    def decide(self, suggestion: Suggestion, status: str, when: str) -> None:
        items = self.load(suggestion.product)
        for item in items:
            if item.id == suggestion.id:
                item.status, item.reviewed_at, item.value = status, when, suggestion.value
        self.save(suggestion.product, items)


# -- writing back -----------------------------------------------------------------------------
def _round_trip() -> YAML:
    ruamel = YAML()
    ruamel.preserve_quotes = True
    ruamel.width = 100
    ruamel.indent(mapping=2, sequence=4, offset=2)
    return ruamel


def bump_patch(version: str) -> str:
    parts = version.split(".")
    if len(parts) == 3 and parts[2].isdigit():
        return f"{parts[0]}.{parts[1]}.{int(parts[2]) + 1}"
    return version


def apply_to_contract(path: Path, suggestion: Suggestion) -> Contract:
    """Write an accepted suggestion into the contract file: comments and layout kept,
    patch version bumped, the result validated (the file is restored if it fails)."""
    original = path.read_text()
    ruamel = _round_trip()
    document = ruamel.load(original)
    if current_value(load_yaml(original), suggestion.field):
        raise ValueError(f"{suggestion.label} already has text written by a person; not replaced")
    set_value(document, suggestion.field, suggestion.value)
    document["version"] = bump_patch(str(document["version"]))
    out = io.StringIO()
    ruamel.dump(document, out)
    path.write_text(out.getvalue())
    try:
        return load_contract(path)
    except ContractError:
        path.write_text(original)
        raise
