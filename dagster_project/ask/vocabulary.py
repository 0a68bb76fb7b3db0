"""The data's words a question is matched against: the distinct values of each
low-cardinality text dimension and the latest day of each model with a time dimension.

Reading them scans every product (most of a one-off `mesh ask`), so they are kept in
`MESH_HOME/cache/vocabulary.json` under a fingerprint of the semantic layer's dimensions
and of each product's newest Delta commit: a refresh that commits anything is seen by
the next question, an unchanged lake is not scanned again."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import date, datetime
from typing import Any

import polars as pl

from dagster_project.ask.parser import OfflineParser
from dagster_project.lake.storage import Lake
from dagster_project.metadata.semantics import SemanticLayer

VALUE_DIMENSIONS_MAX = 200  # dimensions with more distinct values are not matched as words
CACHE_FILE = ("cache", "vocabulary.json")

Vocabulary = tuple[dict[str, list[str]], dict[str, date]]


def vocabulary(layer: SemanticLayer, lake: Lake, mark: str | None = None) -> Vocabulary:
    """The vocabulary: from the cache when its fingerprint is `mark` (by default the
    current one), else read and cached."""
    mark = mark or fingerprint(layer, lake)
    files, uri = lake.settings.files, lake.settings.uri(*CACHE_FILE)
    try:
        cached = json.loads(files.read_text_or(uri) or "{}")
        if cached.get("fingerprint") == mark:
            anchors = {k: date.fromisoformat(v) for k, v in cached["anchors"].items()}
            return cached["values"], anchors
    except (ValueError, KeyError, TypeError, AttributeError):  # torn or foreign: read again
        pass
    values, anchors = read_vocabulary(layer, lake)
    entry = {"values": values, "anchors": {k: str(v) for k, v in anchors.items()}}
    if all(isinstance(v, date) for v in anchors.values()):  # else not kept: read each time
        files.write_text(uri, json.dumps({"fingerprint": mark, **entry}))
    return values, anchors


class Interpreter:
    """One interpreter for every question of a long-lived process (`mesh serve`, the warm
    process of `mesh ask`), made anew when the vocabulary's fingerprint changed."""

    def __init__(self) -> None:
        self._made: tuple[str, OfflineParser] | None = None
        self._lock = threading.Lock()

    def __call__(self, layer: SemanticLayer, lake: Lake) -> OfflineParser:
        with self._lock:
            mark = fingerprint(layer, lake)
            if self._made is None or self._made[0] != mark:
                values, anchors = vocabulary(layer, lake, mark)
                self._made = (mark, OfflineParser(layer, values, anchors))
            return self._made[1]


def fingerprint(layer: SemanticLayer, lake: Lake) -> str:
    """What the vocabulary depends on: which columns are read, and each product's newest
    commit (its log's last file, with its size and time: a table written anew at the
    same version differs too)."""
    read = sorted(
        {(d.name, d.product, d.column) for d in layer.list_dimensions()}
        | {(product, product, m.time_dimension or "") for product, m in layer.models.items()}
    )
    files = lake.settings.files
    heads = []
    for product in sorted({p for _, p, _ in read}):
        commits = files.list_infos(f"{lake.uri(product)}/_delta_log")
        last = [i for i in commits if i.base_name.endswith(".json")][-1:]
        heads.append([product, *((i.base_name, i.size, i.mtime_ns) for i in last)])
    text = json.dumps([read, heads, VALUE_DIMENSIONS_MAX], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def read_vocabulary(layer: SemanticLayer, lake: Lake) -> Vocabulary:
    """Distinct values of each low-cardinality text dimension (to match words), and the
    latest day of data of each model with a time dimension (to anchor "last week")."""
    values: dict[str, list[str]] = {}
    for dim in layer.list_dimensions():
        contract = layer.contracts.get(dim.product)
        if dim.is_time or contract is None:
            continue
        if contract.column(dim.column).logical_type != "string":
            continue
        try:
            series = lake.scan(dim.product).select(dim.column).unique().collect()
        except Exception:  # a product not materialized yet has no values to match
            continue
        found = [v for v in series.to_series().drop_nulls().to_list() if isinstance(v, str)]
        if len(found) <= VALUE_DIMENSIONS_MAX:
            values[dim.name] = sorted(found)
    anchors: dict[str, Any] = {}
    for product, model in layer.models.items():
        if not model.time_dimension:
            continue
        try:
            latest = lake.scan(product).select(pl.col(model.time_dimension).max()).collect()
        except Exception:  # not materialized yet
            continue
        day = latest.item()
        if day is not None:
            anchors[product] = day.date() if isinstance(day, datetime) else day
    return values, anchors
