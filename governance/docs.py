"""Generated documentation for every product and column of the mesh.

For each product the facts a writer needs are gathered from the contract, the profile
of its Delta table, its lineage and the semantic layer (`product_facts`); they are all
a remote model ever sees (schema and aggregate statistics; sample values of non-PII
columns only when allowed; PII values never). The provider turns them into a
`ProductDoc`; the offline provider writes it from templates over the same facts. Any
answer naming a table or column that does not exist is rejected (`ungrounded_names`).
Human text from the contract always wins: generated text fills only what is empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from dagster_project import (
    AIProvider,
    Contract,
    Generation,
    ProductProfile,
    Provenance,
    SemanticLayer,
    Task,
)

INSTRUCTIONS = """You write documentation for one data product of a retail data mesh.
From the facts given (contract, statistics, lineage, metrics), write for the product and
for every column: a one-sentence description, usage notes (how to query and join it),
caveats (gaps, nulls, personal data, how fresh) and up to three example questions an
analyst could answer with it. Refer to tables as domain/product and to columns by their
exact names; do not invent tables, columns or values."""


class ColumnDoc(BaseModel):
    name: str
    description: str
    usage_notes: str = ""
    caveats: str = ""
    example_questions: list[str] = Field(default_factory=list)


class ProductDoc(BaseModel):
    description: str
    usage_notes: str
    caveats: str
    example_questions: list[str] = Field(default_factory=list)
    columns: list[ColumnDoc] = Field(default_factory=list)


# -- facts ------------------------------------------------------------------------------
def product_facts(
    contract: Contract,
    profile: ProductProfile | None,
    layer: SemanticLayer,
    lineage: Iterable[tuple[str, str]],
) -> dict[str, Any]:
    """Everything the documentation may be grounded in, JSON-ready."""
    lineage = list(lineage)
    model = layer.models.get(contract.key)
    metrics = [m for m in layer.metrics.values() if m.product == contract.key]  # YAML order
    sla = contract.freshness
    return {
        "product": contract.key,
        "business_name": contract.odcs.schema_[0].businessName or contract.product,
        "description": contract.description,
        "usage": contract.usage,
        "limitations": contract.limitations,
        "owner": contract.owner,
        "primary_key": contract.primary_key,
        "partitioned_by": contract.partition_column,
        "freshness_sla_hours": sla.max_age.total_seconds() / 3600 if sla else None,
        "rows": profile.rows if profile else None,
        "upstream": sorted(a for a, b in lineage if b == contract.key),
        "downstream": sorted(b for a, b in lineage if a == contract.key),
        "time_dimension": model.time_dimension if model else None,
        "joins": [
            {"to": s.right, "on": s.column, "entity": s.entity}
            for s in layer.join_targets(contract.key)
        ],
        "metrics": [
            {
                "name": m.name,
                "label": m.title,
                "aggregation": m.agg or "ratio",
                "column": m.column,
                "description": m.description,
                "snapshot": bool(m.non_additive),
            }
            for m in metrics
        ],
        "dimensions": [d.name for d in layer.list_dimensions(contract.key)][:12],
        "columns": [_column_facts(contract, c, profile, layer) for c in contract.columns],
    }


def _column_facts(
    contract: Contract, col: Any, profile: ProductProfile | None, layer: SemanticLayer
) -> dict[str, Any]:
    entity = layer.entity_of_key(col.name)
    model = layer.models.get(contract.key)
    stats = profile.columns.get(col.name) if profile else None
    facts: dict[str, Any] = {
        "name": col.name,
        "type": col.logical_type,
        "description": col.description,
        "required": col.required,
        "primary_key": col.primary_key,
        "pii": col.is_pii,
        "accepted_values": col.accepted_values,
        "bounds": col.bounds or None,
        "references": col.references or None,
        "transform": col.prop.transformLogic,
        "entity": entity.name if entity else None,
        "dimension": bool(model and any(d.column == col.name for d in model.dimensions)),
        "metrics": [
            f"{m.name} ({_words(m.agg or 'ratio')})"
            for m in layer.list_metrics()
            if m.product == contract.key and m.column == col.name
        ],
        "statistics": stats.facts() if stats else None,
    }
    return {k: v for k, v in facts.items() if v not in (None, [], False, "")} | {
        "name": col.name,
        "type": col.logical_type,
    }


# -- the offline writer -----------------------------------------------------------------
def _words(name: str) -> str:
    return name.replace("_", " ")


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def write_offline(facts: dict[str, Any]) -> ProductDoc:
    """Documentation from templates over the facts: nothing is invented."""
    return ProductDoc(
        description=_product_description(facts),
        usage_notes=" ".join(_product_usage(facts)),
        caveats=" ".join(_product_caveats(facts)),
        example_questions=_product_questions(facts),
        columns=[_column_doc(facts, c) for c in facts["columns"]],
    )


def _product_description(facts: dict[str, Any]) -> str:
    grain = " and ".join(f"`{k}`" for k in facts["primary_key"]) or "no declared key"
    text = f"{facts['business_name']}: one row per {grain}"
    if facts["upstream"]:
        text += f", built from {', '.join(facts['upstream'])}"
    return text + "."


def _product_usage(facts: dict[str, Any]) -> list[str]:
    notes = []
    part = facts["partitioned_by"]
    if part:
        kind = next((c["type"] for c in facts["columns"] if c["name"] == part), "date")
        day = f"the UTC day of `{part}`" if kind == "timestamp" else f"day on `{part}`"
        notes.append(f"Partitioned by {day}: filter on it to read only the days you need.")
    if facts["joins"]:
        joins = [f"`{j['on']}` to {j['to']} ({j['entity']})" for j in facts["joins"]]
        notes.append(f"Joins on {', '.join(joins)}.")
    if facts["metrics"]:
        metrics = [_metric_phrase(m) for m in facts["metrics"]]
        notes.append(f"Metrics defined on it: {', '.join(metrics)}.")
    consumers = [d for d in facts["downstream"] if not d.startswith("governance/")]
    if consumers:
        notes.append(f"Feeds {', '.join(consumers)}.")
    if facts["owner"]:
        notes.append(f"Questions about it go to {facts['owner']}.")
    return notes


def _metric_phrase(metric: dict[str, Any]) -> str:
    if metric["aggregation"] == "ratio":
        return f"`{metric['name']}` (a ratio)"
    of = f" of `{metric['column']}`" if metric["column"] else ""
    return f"`{metric['name']}` ({metric['aggregation'].replace('_', ' ')}{of})"


def _product_caveats(facts: dict[str, Any]) -> list[str]:
    caveats = []
    pii = [c["name"] for c in facts["columns"] if c.get("pii")]
    if pii:
        names = ", ".join(f"`{n}`" for n in pii)
        caveats.append(f"Holds personal data ({names}): classified PII, never share its values.")
    for col in facts["columns"]:
        stats = col.get("statistics") or {}
        if stats.get("null_fraction", 0) > 0:
            caveats.append(f"`{col['name']}` is empty in {_pct(stats['null_fraction'])} of rows.")
    snapshots = [m["name"] for m in facts["metrics"] if m["snapshot"]]
    if snapshots:
        caveats.append(
            f"{', '.join(f'`{s}`' for s in snapshots)} count stock at a point in time: "
            "take the last day of a period, do not add days up."
        )
    time_col = facts["time_dimension"] or facts["partitioned_by"]
    stats = next((c.get("statistics") for c in facts["columns"] if c["name"] == time_col), None)
    if stats and stats.get("minimum"):
        caveats.append(f"Covers {stats['minimum']} to {stats['maximum']}.")
    if facts["freshness_sla_hours"]:
        hours = facts["freshness_sla_hours"]
        caveats.append(f"Its newest data is meant to be at most {hours:g} hours old (SLA).")
    if facts["rows"] is None:
        caveats.append("Not built yet: no statistics.")
    return caveats


def _product_questions(facts: dict[str, Any]) -> list[str]:
    dims = [d for d in facts["dimensions"] if d != facts["time_dimension"]]
    questions = []
    for i, metric in enumerate(facts["metrics"][:3]):
        dim = _words(dims[i % len(dims)]) if dims else None
        questions.append(_metric_question(metric, dim, bool(facts["time_dimension"])))
    if not questions:
        enum = next((c for c in facts["columns"] if c.get("accepted_values")), None)
        noun = _words(facts["product"].split("/")[1])
        if enum:
            questions.append(f"How many {noun} are there per {_words(enum['name'])}?")
        questions.append(f"How many {noun} rows are there, and how fresh are they?")
    return questions


def _metric_question(metric: dict[str, Any], dim: str | None, monthly: bool) -> str:
    label = metric["label"].lower()
    when = " each month" if monthly else ""
    if metric["aggregation"] in {"count", "count_distinct"}:
        return f"How many {label} are there{f' per {dim}' if dim else ''}{when}?"
    return f"What is the {label}{f' by {dim}' if dim else ''}{when}?"


def _column_doc(facts: dict[str, Any], col: dict[str, Any]) -> ColumnDoc:
    return ColumnDoc(
        name=col["name"],
        description=_column_description(facts, col),
        usage_notes=" ".join(_column_usage(facts, col)),
        caveats=" ".join(_column_caveats(col)),
        example_questions=_column_questions(facts, col),
    )


def _column_description(facts: dict[str, Any], col: dict[str, Any]) -> str:
    article = "an" if col["type"][0] in "aeiou" else "a"
    text = f"{_words(col['name']).capitalize()}, {article} {col['type']}"
    if col.get("entity"):
        text += f" identifying the {col['entity']}"
    if col.get("transform"):
        text += f", computed as {col['transform']}"
    return text + f" of {facts['product']}."


def _column_usage(facts: dict[str, Any], col: dict[str, Any]) -> list[str]:
    notes = []
    if col.get("primary_key"):
        notes.append("Part of the primary key." if len(facts["primary_key"]) > 1 else "The key.")
    if col["name"] == facts["partitioned_by"]:
        notes.append("The partition column: filter on it to prune days.")
    joins = [j for j in facts["joins"] if j["on"] == col["name"]]
    if joins:
        notes.append(f"Joins to {', '.join(j['to'] for j in joins)} ({joins[0]['entity']}).")
    if col.get("dimension"):
        values = col.get("accepted_values")
        shown = f" (values: {', '.join(map(str, values))})" if values else ""
        notes.append(f"A dimension to group or filter by{shown}.")
    if col.get("metrics"):
        notes.append(f"Aggregated by {', '.join(col['metrics'])}.")
    return notes


def _column_caveats(col: dict[str, Any]) -> list[str]:
    caveats = []
    if col.get("pii"):
        caveats.append("Personal data (PII): masked without a grant; never export its values.")
    stats = col.get("statistics") or {}
    if stats.get("null_fraction", 0) > 0:
        caveats.append(f"Empty in {_pct(stats['null_fraction'])} of rows.")
    if "minimum" in stats and not col.get("pii"):
        caveats.append(f"Observed from {stats['minimum']} to {stats['maximum']}.")
    bounds = col.get("bounds")
    if bounds:
        rules = ", ".join(f"{k} {v}" for k, v in bounds.items())
        caveats.append(f"Contract bounds: {rules}.")
    return caveats


def _column_questions(facts: dict[str, Any], col: dict[str, Any]) -> list[str]:
    metrics = [m for m in facts["metrics"] if m["column"] == col["name"]]
    if metrics:
        return [_metric_question(metrics[0], None, bool(facts["time_dimension"]))]
    if col.get("dimension") and facts["metrics"]:
        return [_metric_question(facts["metrics"][0], _words(col["name"]), False)]
    return []


# -- grounding --------------------------------------------------------------------------
_CODE = re.compile(r"`([^`]+)`")
_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
_KEY = re.compile(r"\b([a-z][a-z0-9_]*)/([a-z][a-z0-9_]*)\b")


def known_names(contracts: Iterable[Contract], layer: SemanticLayer) -> set[str]:
    """Every name generated text may use: products, columns, metrics, dimensions,
    entities and accepted values."""
    names: set[str] = set()
    for c in contracts:
        names |= {c.key, c.product, c.domain, *c.column_names}
        for col in c.columns:
            names |= {str(v) for v in col.accepted_values or []}
    names |= set(layer.metrics) | set(layer.entities)
    names |= {d.name for m in layer.models.values() for d in m.dimensions}
    return names


def ungrounded_names(text: str, known: set[str]) -> list[str]:
    """Identifiers in a text (backticked, snake_case or domain/product) that name nothing
    in the mesh."""
    found = set(_SNAKE.findall(text))
    found |= {f"{a}/{b}" for a, b in _KEY.findall(text)}
    for code in _CODE.findall(text):
        found |= {part for part in re.split(r"[\s,()]+", code) if part}
    return sorted(n for n in found if n not in known and not _is_value(n))


def _is_value(token: str) -> bool:
    """Numbers, dates and operators are values, not names."""
    return bool(re.fullmatch(r"[-+*/=<>.\d:T ]+|\d{4}-\d{2}-\d{2}.*", token))


def doc_texts(doc: ProductDoc) -> list[str]:
    texts = [doc.description, doc.usage_notes, doc.caveats, *doc.example_questions]
    for col in doc.columns:
        texts += [col.description, col.usage_notes, col.caveats, *col.example_questions]
    return texts


def check_doc(doc: ProductDoc, facts: dict[str, Any], known: set[str]) -> list[str]:
    """Problems with a generated doc: wrong columns, or names that do not exist."""
    problems = []
    expected = [c["name"] for c in facts["columns"]]
    got = [c.name for c in doc.columns]
    if sorted(got) != sorted(expected):
        problems.append(f"columns {got} are not the product's {expected}")
    unknown = sorted({n for t in doc_texts(doc) for n in ungrounded_names(t, known)})
    if unknown:
        problems.append(f"names that do not exist: {', '.join(unknown)}")
    return problems


# -- one product --------------------------------------------------------------------------
@dataclass(frozen=True)
class Documented:
    """A product's documentation: human text where the contract has it, generated text
    elsewhere, and which fields were generated."""

    contract: Contract
    doc: ProductDoc  # effective text
    generated: ProductDoc  # what the provider wrote
    provenance: Provenance
    generated_fields: dict[str, list[str]]  # subject ("" = product) → generated fields


def document_product(
    provider: AIProvider, contract: Contract, facts: dict[str, Any], known: set[str]
) -> Documented:
    task = Task(
        name="product_documentation",
        instructions=INSTRUCTIONS,
        inputs=facts,
        output=ProductDoc,
        offline=write_offline,
        check=lambda doc: check_doc(doc, facts, known),
    )
    result: Generation[ProductDoc] = provider.generate(task)
    return merge_human_text(contract, result.value, result.provenance)


def merge_human_text(
    contract: Contract, generated: ProductDoc, provenance: Provenance
) -> Documented:
    """Keep every human-written text of the contract; generated text fills the gaps."""
    fields: dict[str, list[str]] = {"": []}
    human = {
        "description": contract.description,
        "usage_notes": contract.usage,
        "caveats": contract.limitations,
    }
    product_values = {}
    for name, text in human.items():
        product_values[name] = text or getattr(generated, name)
        if not text:
            fields[""].append(name)
    questions = contract_questions(contract)
    product_values["example_questions"] = questions or generated.example_questions
    if not questions:
        fields[""].append("example_questions")
    by_name = {c.name: c for c in generated.columns}
    columns = []
    for col in contract.columns:
        made = by_name.get(col.name) or ColumnDoc(name=col.name, description="")
        fields[col.name] = ["usage_notes", "caveats", "example_questions"]
        if not col.description:
            fields[col.name].insert(0, "description")
        columns.append(made.model_copy(update={"description": col.description or made.description}))
    doc = ProductDoc(**product_values, columns=columns)
    return Documented(contract, doc, generated, provenance, fields)


def contract_questions(contract: Contract) -> list[str]:
    """Canonical questions a person wrote into the contract (ODCS `context`)."""
    context = contract.document["schema"][0].get("context")
    if not isinstance(context, dict):
        return []
    return [s["question"] for s in context.get("verifiedStatements") or [] if s.get("question")]
