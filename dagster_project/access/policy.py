"""Governed reads: the access policy enforced on every user-facing read, and audited.

The policy (YAML, owned by governance: `governance/access.yaml`, or the file named by
`MESH_ACCESS_POLICY`) has roles, grants per product and masks for the columns a
contract classifies as personal data. `GovernedReader` is the one read path for people
and partners - the sharing server, `mesh read`, and the question and HTTP APIs:

    reader = GovernedReader(Lake())
    frame = reader.read("customers/customer_profiles", role="analyst", principal="cli:kim")

It returns the granted columns with personal data masked (hash, partial or drop) and
appends one row per read, allowed or denied, to the audit product through the lake API.
Pipelines keep reading their inputs unmasked with `Lake.scan`, as the system.
"""

from __future__ import annotations

import atexit
import copy
import fnmatch
import hashlib
import hmac
import queue
import re
import threading
import uuid
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from dagster_project.checks.quality.companion_contracts import discover_contracts
from dagster_project.core.contracts import Contract, load_contract
from dagster_project.core.credentials import mesh_secret
from dagster_project.core.settings import Settings
from dagster_project.core.workspace import location_folder, read_workspace
from dagster_project.core.yamlfile import load_yaml
from dagster_project.lake.storage import Lake

POLICY_ENV = "MESH_ACCESS_POLICY"
POLICY_FILE = "access.yaml"
MASK_KEY = "MESH_MASK_KEY"  # HMAC key of the hash mask; generated per mesh home if unset
MASKS = ("hash", "partial", "drop")
CHANNELS = ("api", "cli", "sharing", "ask", "pipeline")
HASH_CHARS = 16
# Audit appends of one process, one at a time: two first appends racing would both
# create the table, and the second would overwrite the first's rows.
_AUDIT_WRITES = threading.Lock()


class AccessDenied(PermissionError):
    """The policy does not let this role read this product (or the role is unknown)."""


class PolicyError(ValueError):
    """An access policy file that cannot be used."""


@dataclass(frozen=True)
class Grant:
    """Products by key pattern (`domain/product`, globs), except those holding a column of
    a classification in `unless`: so a grant on `*/*` follows classification and covers
    every new domain's products without naming them."""

    products: tuple[str, ...]
    clear: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()

    def covers(self, contract: Contract) -> bool:
        if any(c.classification in self.unless for c in contract.columns):
            return False
        return any(fnmatch.fnmatchcase(contract.key, pattern) for pattern in self.products)

    def shows_clear(self, column: str) -> bool:
        return "*" in self.clear or column in self.clear


@dataclass(frozen=True)
class Role:
    name: str
    description: str = ""
    grants: tuple[Grant, ...] = ()
    masks: dict[str, str] = field(default_factory=dict)

    def grant_for(self, contract: Contract) -> Grant | None:
        return next((g for g in self.grants if g.covers(contract)), None)


@dataclass(frozen=True)
class Decision:
    """What a role gets of a product: allowed or not, and each returned column's mask
    (None = in clear). Masked-away columns are in `masks` with "drop"."""

    allowed: bool
    reason: str
    columns: tuple[str, ...] = ()
    masks: dict[str, str] = field(default_factory=dict)

    @property
    def visible(self) -> list[str]:
        return [c for c in self.columns if self.masks.get(c) != "drop"]

    def describe_masks(self) -> str:
        return ", ".join(f"{c}:{m}" for c, m in self.masks.items())


@dataclass(frozen=True)
class AccessPolicy:
    roles: dict[str, Role]
    masks: dict[str, str]
    default_mask: str
    audit_product: str
    audit_contract_path: Path
    path: Path | None = None

    @classmethod
    def load(cls, path: Path | str | None = None) -> AccessPolicy:
        path = Path(path) if path else default_policy_path()
        try:
            document = load_yaml(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise PolicyError(f"{path}: {exc}") from exc
        return cls.from_document(document, path)

    @classmethod
    def from_document(cls, document: dict[str, Any], path: Path | None = None) -> AccessPolicy:
        where = path or "<policy>"
        default = document.get("default_mask", "hash")
        masks = {str(k): str(v) for k, v in (document.get("masks") or {}).items()}
        roles = {}
        for name, raw in (document.get("roles") or {}).items():
            raw = raw or {}
            grants = tuple(
                Grant(
                    tuple(g.get("products") or ()),
                    tuple(g.get("clear") or ()),
                    tuple(g.get("unless") or ()),
                )
                for g in raw.get("grants") or []
            )
            role_masks = {str(k): str(v) for k, v in (raw.get("masks") or {}).items()}
            roles[name] = Role(name, raw.get("description", ""), grants, role_masks)
            masks_used = [default, *masks.values(), *role_masks.values()]
            bad = [m for m in masks_used if m not in MASKS]
            if bad:
                raise PolicyError(f"{where}: unknown mask(s) {bad}; use one of {MASKS}")
        audit = document.get("audit") or {}
        if "product" not in audit or "contract" not in audit:
            raise PolicyError(f"{where}: audit needs `product` and `contract`")
        base = path.parent if path else Path.cwd()
        return cls(roles, masks, default, audit["product"], base / audit["contract"], path)

    @cached_property
    def audit_contract(self) -> Contract:
        contract = load_contract(self.audit_contract_path)
        if contract.key != self.audit_product:
            raise PolicyError(f"audit contract {contract.key} is not {self.audit_product}")
        return contract

    def role(self, name: str) -> Role:
        if name not in self.roles:
            raise AccessDenied(f"unknown role {name!r}")
        return self.roles[name]

    def readers(self, contract: Contract) -> dict[str, str]:
        """Each role that may read the product, with what it sees of personal data."""
        found = {}
        for name in self.roles:
            decision = self.decide(name, contract)
            if decision.allowed:
                masked = ", ".join(sorted(decision.masks))
                found[name] = f"personal data masked ({masked})" if masked else "in clear"
        return found

    def mask_for(self, role: Role, product: str, column: str) -> str:
        for masks in (role.masks, self.masks):
            for key in (f"{product}.{column}", column):
                if key in masks:
                    return masks[key]
        return self.default_mask

    def decide(
        self, role_name: str, contract: Contract, columns: Sequence[str] | None = None
    ) -> Decision:
        """What `role_name` may read of the product, for the requested columns."""
        if role_name not in self.roles:
            return Decision(False, f"unknown role {role_name!r}")
        role = self.roles[role_name]
        grant = role.grant_for(contract)
        if grant is None:
            return Decision(False, f"role {role_name} has no grant on {contract.key}")
        wanted = list(columns) if columns else contract.column_names
        unknown = [c for c in wanted if c not in contract.column_names]
        if unknown:
            return Decision(False, f"{contract.key} has no column(s) {', '.join(unknown)}")
        pii = set(contract.pii_columns)
        masks = {
            c: self.mask_for(role, contract.key, c)
            for c in wanted
            if c in pii and not grant.shows_clear(c)
        }
        masked = f"; {len(masks)} PII column(s) masked" if masks else ""
        reason = f"granted to {role_name}{masked}"
        return Decision(True, reason, tuple(wanted), masks)


def default_policy_path() -> Path:
    """`MESH_ACCESS_POLICY`, else the `access.yaml` of a workspace location (governance's)."""
    configured = Settings.from_env().access_policy
    if configured:
        return Path(configured)
    for location in read_workspace():
        candidate = location_folder(location) / POLICY_FILE
        if candidate.exists():
            return candidate
    raise PolicyError(f"no {POLICY_FILE} in any workspace location; set {POLICY_ENV}")


# -- masks -------------------------------------------------------------------------------
_DIGIT = re.compile(r"\d")


def pseudonym(value: str, key: bytes) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:HASH_CHARS]


def partial_text(value: str) -> str:
    """A hint of the value: an email's first letter and domain, a number's last 4
    digits, each word's first letter."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = len(_DIGIT.findall(value))
    if digits >= 6:
        keep, seen, out = 4, 0, []
        for ch in reversed(value):
            if ch.isdigit():
                seen += 1
                out.append(ch if seen <= keep else "*")
            else:
                out.append(ch)
        return "".join(reversed(out))
    return " ".join(f"{word[:1]}***" for word in value.split())


def _map_unique(series: pl.Series, fn) -> pl.Series:
    """Apply a Python function once per distinct value (masks run on whole columns)."""
    text = series.cast(pl.String)
    distinct = text.drop_nulls().unique()
    mapping = dict(zip(distinct.to_list(), [fn(v) for v in distinct.to_list()], strict=True))
    return text.replace_strict(mapping, default=None, return_dtype=pl.String)


def mask_series(series: pl.Series, mask: str, key: bytes) -> pl.Series:
    if mask == "hash":
        return _map_unique(series, lambda v: pseudonym(v, key))
    if mask == "partial":
        if series.dtype == pl.Date or isinstance(series.dtype, pl.Datetime):
            return series.dt.truncate("1y")  # the year only
        return _map_unique(series, partial_text)
    raise ValueError(f"mask {mask!r} does not transform values")


def masked_type(logical_type: str, mask: str) -> str:
    """The contract type of a column after its mask."""
    if mask == "partial" and logical_type in {"date", "timestamp"}:
        return logical_type
    return "string"


def apply_masks(frame: pl.DataFrame, decision: Decision, key: bytes) -> pl.DataFrame:
    """The decision's columns of `frame`, masks applied, dropped columns removed."""
    columns = []
    for name in decision.visible:
        mask = decision.masks.get(name)
        series = frame[name]
        columns.append(mask_series(series, mask, key).alias(name) if mask else series)
    return pl.DataFrame(columns)


def masked_document(contract: Contract, decision: Decision) -> dict[str, Any]:
    """The contract document of the product as this decision shows it: dropped columns
    removed, masked columns retyped; still classified (pseudonymised data is personal)."""
    document = copy.deepcopy(contract.document)
    schema = document["schema"][0]
    kept = []
    for prop in schema.get("properties") or []:
        mask = decision.masks.get(prop["name"])
        if prop["name"] not in decision.columns or mask == "drop":
            continue
        if mask:
            prop["logicalType"] = masked_type(prop.get("logicalType", "string"), mask)
            for field_name in ("logicalTypeOptions", "enum", "relationships"):
                prop.pop(field_name, None)
            note = f" Masked for sharing ({mask})."
            prop["description"] = (prop.get("description") or "").rstrip() + note
        kept.append(prop)
    schema["properties"] = kept
    return document


# -- the governed read path ---------------------------------------------------------------
@dataclass(frozen=True)
class AuditRecord:
    principal: str
    role: str
    channel: str
    product: str
    decision: Decision
    rows: int | None

    def row(self) -> dict[str, Any]:
        allowed = self.decision.allowed
        return {
            "read_id": uuid.uuid4().hex,
            "read_at": datetime.now(UTC).replace(tzinfo=None),
            "principal": self.principal,
            "role": self.role,
            "channel": self.channel,
            "product": self.product,
            "columns": ", ".join(self.decision.visible) if allowed else "",
            "masked_columns": self.decision.describe_masks() if allowed else "",
            "rows": self.rows,
            "decision": "allow" if allowed else "deny",
            "reason": self.decision.reason,
        }


class GovernedReader:
    """Reads products for a role under the access policy, masking PII and auditing."""

    def __init__(
        self,
        lake: Lake | None = None,
        policy: AccessPolicy | None = None,
        *,
        mask_key: bytes | None = None,
    ):
        self.lake = lake or Lake()
        self.policy = policy or AccessPolicy.load()
        if mask_key is not None:
            self.__dict__["mask_key"] = mask_key

    @cached_property
    def mask_key(self) -> bytes:
        """The HMAC key of the hash mask (configured, or generated once per mesh home)."""
        return mesh_secret(MASK_KEY, self.lake.settings).encode()

    @cached_property
    def _contracts(self) -> dict[str, Contract]:
        return {c.key: c for c in discover_contracts()}

    def contract(self, product: str) -> Contract:
        if product not in self._contracts:
            raise KeyError(f"no product {product}")
        return self._contracts[product]

    def authorize(
        self,
        product: str,
        role: str,
        columns: Sequence[str] | None = None,
        *,
        contract: Contract | None = None,
    ) -> Decision:
        """The policy's decision, without reading or auditing."""
        return self.policy.decide(role, contract or self.contract(product), columns)

    def read(
        self,
        product: str,
        role: str,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
        *,
        principal: str | None = None,
        channel: str = "api",
        contract: Contract | None = None,
        version: int | None = None,
    ) -> pl.DataFrame:
        """The product's rows as `role` may see them; raises AccessDenied (audited too)."""
        decision = self._decide(product, role, columns, contract, principal, channel)
        frame = self.lake.scan(product, version=version).select(decision.visible)
        if limit is not None:
            frame = frame.limit(limit)
        result = apply_masks(frame.collect(), decision, self.mask_key)
        self.audit(AuditRecord(principal or role, role, channel, product, decision, result.height))
        return result

    def scan(
        self,
        product: str,
        role: str,
        columns: Sequence[str] | None = None,
        *,
        principal: str | None = None,
        channel: str = "api",
        contract: Contract | None = None,
    ) -> pl.LazyFrame:
        """A lazy, masked scan (for DuckDB or further polars work); audited now, with
        `rows` null since the caller decides what it collects."""
        decision = self._decide(product, role, columns, contract, principal, channel)
        self.audit(AuditRecord(principal or role, role, channel, product, decision, None))
        frame = self.lake.scan(product).select(decision.visible)
        schema = frame.collect_schema()
        key = self.mask_key
        return frame.with_columns(
            pl.col(c).map_batches(
                lambda s, m=m: mask_series(s, m, key),
                return_dtype=schema[c] if m == "partial" and schema[c].is_temporal() else pl.String,
            )
            for c, m in decision.masks.items()
            if m != "drop"
        )

    def _decide(self, product, role, columns, contract, principal, channel) -> Decision:
        if channel not in CHANNELS:
            raise ValueError(f"channel {channel!r} is not one of {CHANNELS}")
        try:
            contract = contract or self.contract(product)
        except KeyError:
            decision = Decision(False, f"no product {product}")
        else:
            decision = self.policy.decide(role, contract, columns)
        if not decision.allowed:
            self.audit(AuditRecord(principal or role, role, channel, product, decision, None))
            raise AccessDenied(decision.reason)
        return decision

    def audit(self, record: AuditRecord) -> None:
        self.audit_many([record])

    def audit_many(self, records: Iterable[AuditRecord]) -> None:
        rows = [r.row() for r in records]
        if rows:
            frame = pl.DataFrame(rows, schema=self.policy.audit_contract.polars_schema)
            with _AUDIT_WRITES:
                self.lake.write(self.policy.audit_contract, frame, mode="append")


class AuditWriter:
    """Appends a reader's audit rows from a background thread, so a request does not wait
    for the Delta write (one append may carry several requests' rows). `flush` waits for
    every queued row; it runs at exit too, so only a killed process can lose one."""

    RETRIES = 3

    def __init__(self, reader: GovernedReader):
        self.reader = reader
        self._queue: queue.Queue[list[AuditRecord]] = queue.Queue()
        threading.Thread(target=self._write_forever, daemon=True, name="audit-writer").start()
        atexit.register(self.flush)

    def put(self, records: Iterable[AuditRecord]) -> None:
        self._queue.put(list(records))

    def flush(self) -> None:
        self._queue.join()

    def _write_forever(self) -> None:
        while True:
            batches = [self._queue.get()]
            while not self._queue.empty():
                batches.append(self._queue.get_nowait())
            try:
                self._write([r for batch in batches for r in batch])
            finally:
                for _ in batches:
                    self._queue.task_done()

    def _write(self, records: list[AuditRecord]) -> None:
        for attempt in range(self.RETRIES):
            try:
                self.reader.audit_many(records)
                return
            except Exception as exc:  # a lake hiccup: try again, then say so loudly
                if attempt == self.RETRIES - 1:
                    warnings.warn(f"{len(records)} audit row(s) not written: {exc}", stacklevel=1)


def audit_summary(lake: Lake, audit_product: str) -> dict[str, Any]:
    """Counts of the audit table: reads, denials, principals, last read."""
    frame = lake.read(audit_product)
    if frame.is_empty():
        return {"reads": 0}
    return {
        "reads": frame.height,
        "denied": int((frame["decision"] == "deny").sum()),
        "principals": frame["principal"].n_unique(),
        "products": frame["product"].n_unique(),
        "last_read": str(frame["read_at"].max()),
        "since": str(frame["read_at"].min()),
        "today": int((frame["read_at"].dt.date() == date.today()).sum()),
    }
