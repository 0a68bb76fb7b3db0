"""Related words for discovery, from the semantic layer: what an entry is about beyond
the words that name and describe it.

A user looking for a product rarely uses its name: they name what it holds. So each
entry of the index gets a field of related phrases, each remembered with where it comes
from, all read from contracts and semantic layers (nothing here knows a domain):

- a product: its columns (names, synonyms, descriptions), the entities its key columns
  identify (with their synonyms) and the metrics defined on it (names, synonyms,
  descriptions);
- a column: the entity it is the key of, wherever it appears;
- a metric: the synonyms of the column it aggregates;
- a product built from others, where the workspace says so without running Dagster: an
  anomalies companion gets its parent's names and synonyms, a domain's insights the
  metrics they report;
- every entry: the entities and glossary terms its own names and description mention
  ("Store that made the sales" mentions the entity store: shop, branch, outlet …); those
  its names mention are its synonyms (replenishment_plan: restocking, reorder …).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TypeVar

from dagster_project.ai.text import terms
from dagster_project.checks.quality.companion_contracts import SUFFIX
from dagster_project.metadata.semantics import SemanticLayer

# A discovery `Entry` (a frozen dataclass with an `expansion` field); not imported, as
# discovery imports this module.
Entry = Any
E = TypeVar("E")
Phrases = list[tuple[str, str]]


def expand_entries(entries: Sequence[E], layer: SemanticLayer) -> list[E]:
    """`entries` with their related phrases filled in from the semantic layer."""
    by_id = {e.id: e for e in entries}
    columns: dict[str, list[Entry]] = {}
    for entry in entries:
        if entry.kind == "column" and entry.product:
            columns.setdefault(entry.product, []).append(entry)
    expanded = []
    for entry in entries:
        # What its name mentions, a thing is called by ("replenishment_plan": restocking
        # plan); what only its description mentions, it is merely related to.
        named = _mentions(entry.names, layer)
        found = [m for m in _mentions([*entry.names, entry.description], layer) if m not in named]
        entry = replace(entry, synonyms=tuple(dict.fromkeys([*entry.synonyms, *named])))
        if entry.kind == "product":
            found += _product_phrases(entry, layer, columns.get(entry.product or "", []))
            found += _neighbour_phrases(entry, layer, by_id)
        elif entry.kind == "column":
            found += _entity_phrases(layer, entry.column or "", f"column {entry.column}")
        else:
            column = by_id.get(f"column:{entry.product}.{entry.column}")
            if column is not None:
                found += [(s, f"column {column.column}: {src}") for s, src in column.synonyms]
        expanded.append(replace(entry, expansion=tuple(dict.fromkeys(found))))
    return expanded


def _product_phrases(entry: Entry, layer: SemanticLayer, columns: list[Entry]) -> Phrases:
    found: Phrases = []
    for column in columns:
        source = f"column {column.column}"
        found += [(n, source) for n in column.names]
        found += [(s, source) for s, _ in column.synonyms]
        found += [(column.description, source)] if column.description else []
        found += _entity_phrases(layer, column.column or "", source)
    for metric in layer.list_metrics():
        if metric.product == entry.product:
            source = f"metric {metric.name}"
            found += [(p, source) for p in (metric.name, metric.title, *metric.synonyms)]
            found += [(metric.description, source)] if metric.description else []
    return found


def _neighbour_phrases(entry: Entry, layer: SemanticLayer, by_id: dict[str, Entry]) -> Phrases:
    """What a product is built from, where the workspace says so without running Dagster:
    an anomalies companion flags rows of its parent; a domain's insights report its
    headline metrics."""
    key = entry.product or ""
    found: Phrases = []
    parent = by_id.get(f"product:{key.removesuffix(SUFFIX)}")
    if key.endswith(SUFFIX) and parent is not None:
        source = f"flags rows of {parent.product}"
        found += [(n, source) for n in parent.names] + [(s, source) for s, _ in parent.synonyms]
    for spec in layer.insights_specs():
        if key != f"{spec.domain}/insights":
            continue
        if spec.lowest is not None and spec.lowest.title:
            found.append((spec.lowest.title, f"reports the lowest {spec.lowest.metric}"))
        for name in spec.metrics:
            metric = layer.metrics.get(name)
            if metric is not None:
                source = f"reports metric {name}"
                found += [(p, source) for p in (metric.title, *metric.synonyms)]
    return found


def _entity_phrases(layer: SemanticLayer, column: str, where: str) -> Phrases:
    """The entity `column` is the key of, and its synonyms."""
    entity = layer.entity_of_key(column)
    if entity is None:
        return []
    source = f"{where} identifies entity {entity.name}"
    return [(p, source) for p in (entity.name, *entity.synonyms)]


def _mentions(texts: Sequence[str], layer: SemanticLayer) -> Phrases:
    """The synonyms of the entities and glossary terms `texts` mention."""
    own = terms(" ".join(texts))
    found: Phrases = []
    for entity in layer.entities.values():
        if _contains(own, terms(entity.name)):
            source = f"mentions entity {entity.name}"
            found += [(s, source) for s in entity.synonyms]
    for term in layer.glossary:
        if _contains(own, terms(term.term)):
            source = f"mentions glossary term '{term.term}'"
            found += [(s, source) for s in term.synonyms]
    return found


def _contains(words: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return n > 0 and any(words[i : i + n] == phrase for i in range(len(words) - n + 1))
