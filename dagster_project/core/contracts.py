"""ODCS v3 data contracts: load, validate against the official JSON schema, typed access.

A contract file describes one data product: one `schema` object named after the
product, in the contract's `domain`. Everything the platform does for a product
(schema enforcement, checks, write mode, freshness, ownership) is read from here.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, cached_property, reduce
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import polars as pl
import yaml
from open_data_contract_standard.model import OpenDataContractStandard, SchemaProperty

from dagster_project.core.errors import UserError
from dagster_project.core.filesystem import is_uri
from dagster_project.core.settings import get_settings
from dagster_project.core.yamlfile import load_yaml

CONTRACT_SUFFIX = ".odcs.yaml"
WRITE_MODES = ("merge", "partition_overwrite", "append", "overwrite")
# Classifications that mark a column as personal data the mesh must protect.
PII_CLASSIFICATIONS = {"pii", "sensitive", "restricted", "confidential"}

TEMPORAL = ("date", "timestamp")
RANGE_OPTIONS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
# What happens to landed rows that break a blocking rule (schema customProperty onViolation).
ON_VIOLATION = ("quarantine_file", "quarantine_rows")
# The row-level rules a property's ODCS library metric sets the severity of.
METRIC_RULES = {"nullValues": ("not_null",), "invalidValues": ("accepted_values", "range")}
SEVERITIES = ("error", "warning", "info")  # error blocks; the others only report
POLARS_TYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "integer": pl.Int64(),
    "number": pl.Float64(),
    "boolean": pl.Boolean(),
    "date": pl.Date(),
    "timestamp": pl.Datetime("us"),
}
# SLA units (ODCS: "d, day, days for days; y, yr, years for years, etc.") → one unit.
_UNITS = {
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), timedelta(minutes=1)),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), timedelta(hours=1)),
    **dict.fromkeys(("d", "day", "days"), timedelta(days=1)),
    **dict.fromkeys(("w", "wk", "week", "weeks"), timedelta(weeks=1)),
    **dict.fromkeys(("y", "yr", "year", "years"), timedelta(days=365)),
}
# ODCS's reference to another contract's property: `<file>#/schema/<schema>/properties/<p>`.
EXTERNAL_REFERENCE = re.compile(
    r"^(?P<file>[^#]+\.ya?ml)#/?schema/(?P<product>[^/]+)/properties/(?P<column>[^/]+)$"
)
# The name(s) in jsonschema's "... ('x' was unexpected)" messages for unknown fields.
_UNEXPECTED = re.compile(r"\((.*) (?:was|were) unexpected\)")


class ContractError(UserError, ValueError):
    """A contract file that cannot be used: says which file, which field and why."""

    def __init__(self, path: Path | str, field: str, reason: str):
        self.path, self.field, self.reason = str(path), field, reason
        super().__init__(
            f"{path}: {field}: {reason}",
            "Fix the contract; `mesh status` reads every contract again.",
        )


@cache
def odcs_json_schema() -> dict[str, Any]:
    """The official ODCS JSON schema shipped by `open-data-contract-standard`."""
    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text()
    return json.loads(text)


@cache
def _validator() -> jsonschema.Draft201909Validator:
    return jsonschema.Draft201909Validator(odcs_json_schema())


# Documents found valid, by content and schema: validating one takes ~0.1 s, and every
# location, asset and governance build loads the same contracts again. Kept on disk too
# (`<MESH_HOME>/.cache/valid-contracts`), so that a short command (`mesh ask`) does not
# validate the workspace's ~30 unchanged contracts anew in each process (~1 s of 3.5 s).
_VALID: set[str] = set()


def _valid_file() -> Path | None:
    return _valid_path(get_settings().home)


@cache
def _valid_path(home: str) -> Path | None:
    if is_uri(home):
        return None
    path = Path(home) / ".cache" / "valid-contracts"
    with contextlib.suppress(OSError):
        _VALID.update(path.read_text().split())
    return path


@cache
def _schema_digest() -> str:
    return hashlib.sha256(json.dumps(odcs_json_schema(), sort_keys=True).encode()).hexdigest()


def _remember_valid(digest: str) -> None:
    _VALID.add(digest)
    path = _valid_file()
    if path is None:
        return
    # A whole new file moved into place: concurrent processes (xdist, a location and the
    # CLI) never read half a line; one that loses a race only validates again. A cache
    # that cannot be written (read-only home) is no error.
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            _VALID.update(path.read_text().split())
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text("".join(f"{kept}\n" for kept in sorted(_VALID)))
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)


def validate_document(document: dict[str, Any], path: Path | str = "<contract>") -> None:
    """Raise ContractError for the first (most specific) schema violation; an unknown
    field (usually a typo) is named first, with the closest ODCS field name."""
    text = json.dumps(document, sort_keys=True, default=repr)
    digest = hashlib.sha256((_schema_digest() + text).encode()).hexdigest()
    _valid_file()  # loads the digests kept on disk
    if digest in _VALID:
        return
    errors = sorted(
        _validator().iter_errors(document), key=lambda e: (len(e.absolute_path), e.message)
    )
    if not errors:
        _remember_valid(digest)
        return
    unknown = [e for e in errors if _unknown_field(e)]
    error = unknown[0] if unknown else jsonschema.exceptions.best_match(errors)
    parts = [str(p) for p in error.absolute_path]
    name = _unknown_field(error)
    if name is None:
        raise ContractError(path, "/".join(parts) or "(document)", error.message)
    homes = _odcs_field_homes()
    close = difflib.get_close_matches(name, homes, n=1)
    if name in homes:  # a real ODCS field in the wrong place: say where it goes
        reason = (
            f"no field '{name}' here (ODCS has it under {' or '.join(map(repr, homes[name][:3]))})"
        )
    elif close:
        reason = f"unknown field '{name}' (did you mean '{close[0]}'?)"
    else:
        reason = f"unknown field '{name}' (own fields go in customProperties)"
    raise ContractError(path, "/".join([*parts, name]), reason)


def _unknown_field(error: jsonschema.ValidationError) -> str | None:
    unexpected = _UNEXPECTED.search(error.message)
    names = re.findall(r"'([^']*)'", unexpected.group(1)) if unexpected else []
    return names[0] if len(names) == 1 else None


@cache
def _odcs_field_homes() -> dict[str, tuple[str, ...]]:
    """Every field name the ODCS schema declares, with the fields it sits under (`(top
    level)` for the document's own), following `$ref`s."""
    schema = odcs_json_schema()
    homes: dict[str, set[str]] = {}
    seen: set[tuple[str, str]] = set()

    def walk(node: Any, parent: str) -> None:
        if isinstance(node, list):
            for value in node:
                walk(value, parent)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/") and (ref, parent) not in seen:
            seen.add((ref, parent))
            walk(reduce(dict.get, ref[2:].split("/"), schema), parent)
        for name, sub in (node.get("properties") or {}).items():
            homes.setdefault(name, set()).add(parent)
            walk(sub, name)
        for key in ("items", "allOf", "anyOf", "oneOf", "then", "else"):
            walk(node.get(key), parent)

    walk(schema, "(top level)")
    return {name: tuple(sorted(parents)) for name, parents in sorted(homes.items())}


@dataclass(frozen=True)
class Column:
    """One contract property, with the fields the platform acts on."""

    prop: SchemaProperty
    schema_references: tuple[str, ...] = ()  # single-column relationships of its schema

    @property
    def name(self) -> str:
        return self.prop.name or ""

    @property
    def logical_type(self) -> str:
        return self.prop.logicalType or "string"

    @property
    def dtype(self) -> pl.DataType:
        return POLARS_TYPES[self.logical_type]

    @property
    def description(self) -> str:
        return self.prop.description or ""

    @property
    def required(self) -> bool:
        return bool(self.prop.required or self.prop.primaryKey)

    @property
    def unique(self) -> bool:
        return bool(self.prop.unique)

    @property
    def primary_key(self) -> bool:
        return bool(self.prop.primaryKey)

    @property
    def partitioned(self) -> bool:
        return bool(self.prop.partitioned)

    @property
    def classification(self) -> str | None:
        return self.prop.classification

    @property
    def is_pii(self) -> bool:
        return (self.classification or "").lower() in PII_CLASSIFICATIONS

    @property
    def accepted_values(self) -> list[Any] | None:
        return [e.value for e in self.prop.enum] if self.prop.enum else None

    @property
    def bounds(self) -> dict[str, Any]:
        """Range options from `logicalTypeOptions`: minimum, maximum, exclusiveMinimum/Maximum."""
        options = self.prop.logicalTypeOptions or {}
        return {k: options[k] for k in RANGE_OPTIONS if k in options}

    @property
    def references(self) -> list[str]:
        """Foreign keys as written (`to`), this property's own and the single-column ones of
        its schema; a composite key's columns are in `Contract.foreign_keys`."""
        return [r.to for r in self.prop.relationships or [] if isinstance(r.to, str)] + list(
            self.schema_references
        )

    def custom(self, name: str, default: Any = None) -> Any:
        return _custom(self.prop.customProperties, name, default)

    def severity(self, rule: str) -> str:
        """`error` (blocks: rows breaking it are never written) unless the property's ODCS
        quality entry for the rule's metric says otherwise: `nullValues` for not_null,
        `invalidValues` for accepted_values and range (`severity: warning` only reports)."""
        for quality in self.prop.quality or []:
            if rule in METRIC_RULES.get(quality.metric or quality.rule or "", ()):
                return str(quality.severity or "error").lower()
        return "error"

    def blocks(self, rule: str) -> bool:
        return self.severity(rule) == "error"


@dataclass(frozen=True)
class ForeignKey:
    """One relationship: `columns` of this product reference `target_columns` of `target`
    (`domain/product`); several columns are a composite key, matched together. Its
    customProperties `maxOrphanShare` (share of rows whose key is missing in the target,
    default 0) and `severity` (`error`, the default, blocks; `warning` only warns)."""

    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]
    max_orphan_share: float = 0.0
    severity: str = "error"

    @property
    def label(self) -> str:
        here, there = ", ".join(self.columns), ", ".join(self.target_columns)
        if len(self.columns) > 1:
            here, there = f"({here})", f"({there})"
        return f"{here} → {self.target}.{there}"


@dataclass(frozen=True)
class Freshness:
    """The contract's freshness SLA: data no older than `max_age`; `severity` (the SLA's
    customProperties, `warning` by default, or `error`) of the event-time check."""

    max_age: timedelta
    element: str | None = None
    severity: str = "warning"


class Contract:
    """A validated ODCS contract for one data product."""

    def __init__(self, document: dict[str, Any], path: Path | str = "<contract>"):
        validate_document(document, path)
        self.document = document
        self.path = Path(path) if not str(path).startswith("<") else None
        self._where = path
        self.odcs = OpenDataContractStandard.model_validate(document)
        if not self.odcs.domain:
            raise ContractError(path, "domain", "every product contract names its domain")
        if not self.odcs.schema_ or len(self.odcs.schema_) != 1:
            raise ContractError(path, "schema", "a product contract has exactly one schema object")
        if self.write_mode not in WRITE_MODES:
            raise ContractError(
                path,
                "customProperties/writeMode",
                f"{self.write_mode!r} is not one of {', '.join(WRITE_MODES)}",
            )
        if self.write_mode == "merge" and not self.primary_key:
            raise ContractError(path, "schema/0/properties", "writeMode merge needs a primaryKey")
        if self.write_mode == "partition_overwrite" and not self.partition_column:
            raise ContractError(
                path,
                "schema/0/properties",
                "writeMode partition_overwrite needs a partitioned column",
            )
        self._check_partition_type(path)
        self.freshness  # noqa: B018 - an unusable SLA fails at load, not at first use
        self.partition_start  # noqa: B018 - likewise an unusable partition start
        self.event_time  # noqa: B018 - and an event-time column that is not one
        self.foreign_keys  # noqa: B018 - every relationship resolves, at load
        self._check_screening(path)

    def _check_partition_type(self, path: str) -> None:
        """A daily partition is a day: a date, or a timestamp (the row's UTC day); text or
        a number names no day."""
        part = self.partition_column
        if part is None or self.column(part).logical_type in TEMPORAL:
            return
        kind = self.column(part).logical_type
        raise ContractError(
            path,
            f"schema/0/properties/{self.column_names.index(part)}/partitioned",
            f"{part} is a {kind}: a daily partition is a date or timestamp column; give "
            f"{part} logicalType date or timestamp, or partition by such a column",
        )

    def _check_reference(self, where: str, ref: str) -> None:
        """A relationship's `to` resolves the ODCS way: another contract's property by its
        file, or (shorthand) a property of this contract's one schema."""
        if EXTERNAL_REFERENCE.match(ref):
            return
        try:
            domain, product, column = parse_reference(ref, self.domain)
        except ValueError as exc:
            raise ContractError(self._where, where, str(exc)) from None
        if ref.count(".") == 1 and product == self.product:
            return
        fix = external_reference(domain, product, column, here=self.domain)
        raise ContractError(
            self._where,
            where,
            f"{ref!r} names a schema this contract does not have; "
            f"another contract's property is written `{fix}`",
        )

    def _check_screening(self, path: Path | str) -> None:
        if self.on_violation not in ON_VIOLATION:
            raise ContractError(
                path,
                "schema/0/customProperties/onViolation",
                f"{self.on_violation!r} is not one of {', '.join(ON_VIOLATION)}",
            )
        for col in self.columns:
            for rule in ("not_null", "accepted_values", "range"):
                if col.severity(rule) not in SEVERITIES:
                    raise ContractError(
                        path,
                        f"schema/0/properties/{col.name}/quality",
                        f"severity {col.severity(rule)!r} is not one of {', '.join(SEVERITIES)}",
                    )

    # -- identity ----------------------------------------------------------------
    @property
    def domain(self) -> str:
        return self.odcs.domain or ""

    @property
    def product(self) -> str:
        return self._object.name or ""

    @property
    def key(self) -> str:
        """`domain/product`, the product's address everywhere in the mesh."""
        return f"{self.domain}/{self.product}"

    @property
    def version(self) -> str:
        return self.odcs.version

    @property
    def status(self) -> str | None:
        return self.odcs.status

    # -- description and ownership -------------------------------------------------
    @property
    def _object(self):
        return self.odcs.schema_[0]

    @property
    def description(self) -> str:
        """The product's description: the schema object's, else the contract's purpose."""
        if self._object.description:
            return self._object.description
        d = self.odcs.description
        return (d.purpose or "") if d else ""

    @property
    def usage(self) -> str:
        d = self.odcs.description
        return (d.usage or "") if d else ""

    @property
    def limitations(self) -> str:
        d = self.odcs.description
        return (d.limitations or "") if d else ""

    @property
    def owner(self) -> str | None:
        """The team name, else the member whose role is owner."""
        team = self.odcs.team
        if team is None:
            return None
        members = team if isinstance(team, list) else (team.members or [])
        for member in members:
            if (member.role or "").lower() in {"owner", "product owner", "data product owner"}:
                return member.username
        return getattr(team, "name", None) or (members[0].username if members else None)

    @property
    def tags(self) -> list[str]:
        return list(self.odcs.tags or [])

    @property
    def synonyms(self) -> list[str]:
        """Other names of the product: the schema object's ODCS `synonyms`."""
        return [s.synonym for s in self._object.synonyms or [] if s.synonym]

    # -- schema --------------------------------------------------------------------
    @cached_property
    def columns(self) -> list[Column]:
        single = defaultdict(list)
        for r in self._object.relationships or []:
            if isinstance(r.from_, str) and isinstance(r.to, str):
                single[r.from_.rsplit(".", 1)[-1]].append(r.to)
        return [Column(p, tuple(single[p.name])) for p in self._object.properties or []]

    @cached_property
    def foreign_keys(self) -> list[ForeignKey]:
        """Every relationship: each property's own (`to`) and the schema's (`from` and
        `to`, one property each or lists of equal length: a composite key)."""
        found = []
        for i, col in enumerate(self.columns):
            for j, r in enumerate(col.prop.relationships or []):
                where = f"schema/0/properties/{i}/relationships/{j}"
                if not isinstance(r.to, str):
                    raise ContractError(
                        self._where,
                        f"{where}/to",
                        "a composite key is a schema-level relationship: list its "
                        "properties in `from` and `to` under schema/0/relationships",
                    )
                found.append(self._foreign_key(where, [col.name], [r.to], r.customProperties))
        for j, r in enumerate(self._object.relationships or []):
            where = f"schema/0/relationships/{j}"
            here = [r.from_] if isinstance(r.from_, str) else list(r.from_ or [])
            there = [r.to] if isinstance(r.to, str) else list(r.to or [])
            if not here or len(here) != len(there):
                raise ContractError(
                    self._where, where, "`from` and `to` name as many properties each"
                )
            found.append(
                self._foreign_key(where, self._own(where, here), there, r.customProperties)
            )
        return found

    def _own(self, where: str, refs: list[str]) -> list[str]:
        """The properties a relationship's `from` names: `column` or `product.column`."""
        columns = []
        for ref in refs:
            product, _, column = ref.rpartition(".")
            if product not in ("", self.product) or column not in self.column_names:
                raise ContractError(
                    self._where, f"{where}/from", f"{ref!r} is not a property of {self.product}"
                )
            columns.append(column)
        return columns

    def _foreign_key(
        self, where: str, columns: list[str], refs: list[str], props: list | None
    ) -> ForeignKey:
        targets = []
        for ref in refs:
            self._check_reference(f"{where}/to", ref)
            targets.append(parse_reference(ref, self.domain))
        if len({t[:2] for t in targets}) != 1:
            raise ContractError(
                self._where, f"{where}/to", "a composite key's properties are of one product"
            )
        share = float(_custom(props, "maxOrphanShare", 0.0))
        severity = str(_custom(props, "severity", "error")).lower()
        if not 0 <= share <= 1 or severity not in {"error", "warning"}:
            raise ContractError(
                self._where,
                where,
                "maxOrphanShare is a share (0..1) and severity is error or warning",
            )
        domain, product, _ = targets[0]
        return ForeignKey(
            tuple(columns), f"{domain}/{product}", tuple(t[2] for t in targets), share, severity
        )

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.key} has no column {name!r}")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def polars_schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.dtype for c in self.columns})

    @property
    def primary_key(self) -> list[str]:
        keyed = [c for c in self.columns if c.primary_key]
        keyed.sort(key=lambda c: c.prop.primaryKeyPosition or 0)
        return [c.name for c in keyed]

    @property
    def partition_column(self) -> str | None:
        """The column whose day is a row's daily partition: a date, or a timestamp (its
        UTC day); None when the product is not partitioned."""
        parts = [c.name for c in self.columns if c.partitioned]
        return parts[0] if parts else None

    @property
    def partition_by(self) -> list[str]:
        """The table's Delta partition columns: a date partition column. A timestamp's day
        is a logical partition (a Delta partition per instant would be a folder per row):
        its days are ranges of the column, pruned on the files' statistics."""
        part = self.partition_column
        return [part] if part and self.column(part).logical_type == "date" else []

    @property
    def partition_start(self) -> date | None:
        """The first day of the product's daily partitions, `partitionStart` (YYYY-MM-DD)
        in the schema object's customProperties (ODCS has no standard field for it) or the
        contract's; None: the platform takes it from the data."""
        value = _custom(self._object.customProperties, "partitionStart", None)
        field = "schema/0/customProperties/partitionStart"
        if value is None:
            value, field = self.custom("partitionStart"), "customProperties/partitionStart"
        if value is None:
            return None
        day = _day(value)
        if day is None:
            raise ContractError(self._where, field, f"{value!r} is not a day; write YYYY-MM-DD")
        return day

    @property
    def pii_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.is_pii]

    # -- behaviour -----------------------------------------------------------------
    @property
    def write_mode(self) -> str:
        default = "merge" if self.primary_key else "append"
        return str(self.custom("writeMode", default))

    @property
    def on_violation(self) -> str:
        """What a landed file with rows breaking a blocking rule does: `quarantine_file`
        (the default: the whole file is set aside) or `quarantine_rows` (only those rows
        are; the others load). The schema object's customProperty, else the contract's."""
        default = self.custom("onViolation", "quarantine_file")
        return str(_custom(self._object.customProperties, "onViolation", default))

    @property
    def min_row_count(self) -> int:
        """From a schema-level `rowCount` rule (mustBeGreaterThan / OrEqualTo); else 1."""
        for rule in self._object.quality or []:
            if rule.metric == "rowCount":
                if rule.mustBeGreaterThan is not None:
                    return int(rule.mustBeGreaterThan) + 1
                if rule.mustBeGreaterOrEqualTo is not None:
                    return int(rule.mustBeGreaterOrEqualTo)
        return 1

    @property
    def freshness(self) -> Freshness | None:
        for i, sla in enumerate(self.odcs.slaProperties or []):
            if sla.property in {"freshness", "latency"} and sla.value is not None:
                unit = _UNITS.get((sla.unit or "d").strip().lower())
                if unit is None:
                    raise ContractError(
                        self._where,
                        f"slaProperties/{i}/unit",
                        f"unknown unit {sla.unit!r}; use one of {', '.join(_UNITS)}",
                    )
                try:
                    max_age = unit * float(sla.value)
                except (TypeError, ValueError) as exc:
                    raise ContractError(
                        self._where, f"slaProperties/{i}/value", f"not a number: {sla.value!r}"
                    ) from exc
                severity = str(_custom(sla.customProperties, "severity", "warning")).lower()
                if severity not in {"warning", "error"}:
                    where = f"slaProperties/{i}/customProperties/severity"
                    raise ContractError(self._where, where, f"{severity!r}: use warning or error")
                return Freshness(max_age, sla.element, severity)
        return None

    @property
    def event_time(self) -> str | None:
        """The date or timestamp column whose newest value says how fresh the data is: the
        freshness SLA's `element` (`product.column` or `column`, when it names this
        product), else customProperty `eventTime`, else the partition column."""
        for i, sla in enumerate(self.odcs.slaProperties or []):
            if sla.property in {"freshness", "latency"} and sla.element:
                table, _, name = sla.element.split(",")[0].strip().rpartition(".")
                if table in {"", self.product}:  # a copied SLA may name its source's column
                    return self._temporal(name, f"slaProperties/{i}/element")
        declared = self.custom("eventTime")
        if declared is not None:
            return self._temporal(str(declared), "customProperties/eventTime")
        part = self.partition_column
        return part if part and self.column(part).logical_type in TEMPORAL else None

    def _temporal(self, name: str, field: str) -> str:
        if name not in self.column_names:
            raise ContractError(self._where, field, f"{self.product} has no column {name!r}")
        if self.column(name).logical_type not in TEMPORAL:
            reason = f"{name} is a {self.column(name).logical_type}, not a date or timestamp"
            raise ContractError(self._where, field, reason)
        return name

    def custom(self, name: str, default: Any = None) -> Any:
        return _custom(self.odcs.customProperties, name, default)

    def __repr__(self) -> str:
        return f"Contract({self.key} v{self.version})"


def _day(value: Any) -> date | None:
    """A day from YAML: a date (unquoted in the file) or an ISO string; else None."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _custom(props: list | None, name: str, default: Any) -> Any:
    for p in props or []:
        if p.property == name:
            return p.value
    return default


# Contracts loaded in this process, by file and text: each location, asset and governance
# build reads the same files again (parsing and validating one takes tens of ms).
_LOADED: dict[Path, tuple[str, Contract]] = {}


def load_contract(path: Path | str) -> Contract:
    """Load and validate one contract file; ContractError names the file, field and reason.
    A file whose text is unchanged since this process loaded it gives the same Contract."""
    path = Path(path)
    text = path.read_text()
    kept = _LOADED.get(path.absolute())
    if kept is not None and kept[0] == text:
        return kept[1]
    try:
        document = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ContractError(path, "(yaml)", str(exc)) from exc
    if not isinstance(document, dict):
        raise ContractError(path, "(document)", "a contract is a YAML mapping")
    contract = Contract(document, path)
    _LOADED[path.absolute()] = (text, contract)
    return contract


def load_contracts(folder: Path | str) -> dict[str, Contract]:
    """Every `*.odcs.yaml` in a folder, by product name."""
    contracts = [load_contract(p) for p in sorted(Path(folder).glob(f"*{CONTRACT_SUFFIX}"))]
    return {c.product: c for c in contracts}


def parse_reference(ref: str, domain: str) -> tuple[str, str, str]:
    """A reference → (domain, product, column).

    A relationship's `to` names another contract's property in ODCS's external reference
    notation, its file relative to the referencing contract:
    `stores.odcs.yaml#/schema/stores/properties/store_id` (same folder: same domain) or
    `../../customers/contracts/customer_profiles.odcs.yaml#/schema/customer_profiles/
    properties/customer_id` (the domain is the folder holding `contracts/`). ODCS shorthand
    `product.column` is a property of this contract; `domain.product.column` is read too
    (drift segments name columns of other products that way)."""
    external = EXTERNAL_REFERENCE.match(ref)
    if external:
        folders = Path(external["file"]).parent.parts
        if folders and (len(folders) < 2 or folders[-1] != "contracts"):
            raise ValueError(f"reference {ref!r}: the file is not in a <domain>/contracts/ folder")
        return (folders[-2] if folders else domain), external["product"], external["column"]
    parts = ref.split(".")
    if len(parts) == 2:
        return domain, parts[0], parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise ValueError(
        f"reference {ref!r} is not <contract file>#/schema/<product>/properties/<column>, "
        "product.column or domain.product.column"
    )


def external_reference(domain: str, product: str, column: str, *, here: str) -> str:
    """The ODCS `to` naming `domain/product.column` from a contract of domain `here`."""
    folder = "" if domain == here else f"../../{domain}/contracts/"
    return f"{folder}{product}{CONTRACT_SUFFIX}#/schema/{product}/properties/{column}"
