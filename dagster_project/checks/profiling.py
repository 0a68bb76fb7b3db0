"""Column statistics of a product's Delta table, with what may leave the mesh decided here.

Aggregates only by default: row count, null share, distinct count, and for numbers and
dates their range and mean. Sample values (the most frequent ones) are collected only
when asked for and only for columns not classified PII; a PII column never yields a
value of any kind — not even its minimum or maximum.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl

from dagster_project.core.contracts import Contract
from dagster_project.lake.storage import Lake

RANGED = {"integer", "number", "date", "timestamp"}
SAMPLE_SIZE = 5


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    logical_type: str
    pii: bool
    null_fraction: float
    distinct_count: int
    minimum: Any = None
    maximum: Any = None
    mean: float | None = None
    samples: tuple[Any, ...] = ()

    def facts(self) -> dict[str, Any]:
        """JSON-ready statistics; empty entries left out."""
        out = {k: _plain(v) for k, v in asdict(self).items() if v not in (None, ())}
        out.pop("name", None)
        out.pop("logical_type", None)
        return out


@dataclass(frozen=True)
class ProductProfile:
    key: str
    rows: int
    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    samples_included: bool = False


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def profile_product(
    lake: Lake, contract: Contract, *, samples: bool = False
) -> ProductProfile | None:
    """Statistics of the product's current table (None when it was never written). Kept
    per Delta version and contract: an unchanged product is not scanned again."""
    info = lake.info(contract.key)
    if info is None:
        return None
    stamp = [info.version, samples, json.dumps(contract.document, sort_keys=True, default=repr)]
    stamp_hash = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()
    uri = lake.settings.registry_uri("profiles", contract.domain, f"{contract.product}.pkl")
    kept = _kept(lake, uri)
    if kept is not None and kept[0] == stamp_hash:
        return kept[1]
    profile = _profile(lake, contract, samples)
    lake.settings.files.write_bytes(uri, pickle.dumps((stamp_hash, profile)))
    return profile


def _kept(lake: Lake, uri: str) -> tuple[str, ProductProfile] | None:
    if not lake.settings.files.exists(uri):
        return None
    try:
        return pickle.loads(lake.settings.files.read_bytes(uri))
    except Exception:  # an unreadable copy is profiled again, never trusted
        return None


def _profile(lake: Lake, contract: Contract, samples: bool) -> ProductProfile:
    frame = lake.scan(contract.key)
    present = set(frame.collect_schema().names())
    columns = [c for c in contract.columns if c.name in present]
    exprs: list[pl.Expr] = [pl.len().alias("__rows")]
    for col in columns:
        c = pl.col(col.name)
        exprs += [
            c.null_count().alias(f"{col.name}__nulls"),
            c.n_unique().alias(f"{col.name}__distinct"),
        ]
        if not col.is_pii and col.logical_type in RANGED:
            exprs += [c.min().alias(f"{col.name}__min"), c.max().alias(f"{col.name}__max")]
        if not col.is_pii and col.logical_type in {"integer", "number"}:
            exprs.append(c.mean().alias(f"{col.name}__mean"))
    stats = frame.select(exprs).collect().row(0, named=True)
    rows = int(stats["__rows"])
    profiles = {}
    for col in columns:
        shown = _top_values(frame, col.name) if samples and not col.is_pii else ()
        profiles[col.name] = ColumnProfile(
            name=col.name,
            logical_type=col.logical_type,
            pii=col.is_pii,
            null_fraction=(stats[f"{col.name}__nulls"] / rows) if rows else 0.0,
            distinct_count=int(stats[f"{col.name}__distinct"]),
            minimum=stats.get(f"{col.name}__min"),
            maximum=stats.get(f"{col.name}__max"),
            mean=stats.get(f"{col.name}__mean"),
            samples=shown,
        )
    return ProductProfile(contract.key, rows, profiles, samples_included=samples)


def _top_values(frame: pl.LazyFrame, column: str) -> tuple[Any, ...]:
    counts = (
        frame.select(pl.col(column))
        .drop_nulls()
        .group_by(column)
        .len()
        .sort(["len", column], descending=[True, False])
        .head(SAMPLE_SIZE)
        .collect()
    )
    return tuple(_plain(v) for v in counts[column].to_list())
