"""Contract rules as blocking Dagster asset checks.

Each rule kind the contract uses becomes one `AssetCheckSpec` (blocking, severity
ERROR on failure): schema, not_null, unique, accepted_values, range, row_count,
referential_integrity. All column rules are evaluated in a single polars pass over
the frame just written, so checks cost one scan however many columns they cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import dagster as dg
import polars as pl
from deltalake.exceptions import TableNotFoundError

from dagster_project.core.contracts import Contract, ForeignKey
from dagster_project.lake.screening import SAMPLE_KEYS, Violation, violation
from dagster_project.lake.storage import Lake, duplicate_count
from dagster_project.products.product import CheckFamily, FamilyResult, Written

_OPS = {"minimum": "ge", "maximum": "le", "exclusiveMinimum": "gt", "exclusiveMaximum": "lt"}
ROW_RULES = ("not_null", "accepted_values", "range")  # judged row by row, screened before writes
RULE_DESCRIPTIONS = {
    "schema": "Table columns and types match the contract",
    "not_null": "Required columns have no nulls",
    "unique": "Primary key and unique columns have no duplicates",
    "accepted_values": "Columns with an enum hold only accepted values",
    "range": "Numbers and dates stay within the contract's bounds",
    "row_count": "The product has at least the contract's minimum row count",
    "referential_integrity": "Foreign keys exist in the products they reference",
}


@dataclass
class RuleOutcome:
    """The verdict of one rule: failures per column and what was measured."""

    rule: str
    failures: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    warn_only: bool = False  # broken only where the contract tolerates it with a warning

    @property
    def passed(self) -> bool:
        return not any(self.failures.values())

    def describe(self) -> str:
        if self.passed:
            return "passed"

        def evidence(col: str, n: int) -> str:  # "2 value(s) missing in ...", "missing"
            detail = self.details.get(col)
            return detail if isinstance(detail, str) else f"{n:,} failing"

        return "; ".join(f"{col}: {evidence(col, n)}" for col, n in self.failures.items() if n)


def rules_for(contract: Contract) -> list[str]:
    """The rule kinds a contract asks for, in a stable order."""
    cols = contract.columns
    wanted = {
        "schema": True,
        "not_null": any(c.required for c in cols),
        "unique": bool(contract.primary_key) or any(c.unique for c in cols),
        "accepted_values": any(c.accepted_values for c in cols),
        "range": any(c.bounds for c in cols),
        "row_count": True,
        "referential_integrity": bool(contract.foreign_keys),
    }
    return [rule for rule, on in wanted.items() if on]


def contract_check_specs(contract: Contract, asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    # Relationships, and row rules, that only warn do not block downstream products.
    warn_only = {"referential_integrity"} if _references_only_warn(contract) else set()
    warn_only |= {rule for rule in ROW_RULES if _rule_only_warns(contract, rule)}
    return [
        dg.AssetCheckSpec(
            name=f"contract_{rule}",
            asset=asset_key,
            description=RULE_DESCRIPTIONS[rule],
            blocking=rule not in warn_only,
            metadata={"rule": rule, "contract_version": contract.version},
        )
        for rule in rules_for(contract)
    ]


def _rule_only_warns(contract: Contract, rule: str) -> bool:
    columns = list(row_rules(contract, contract.column_names))
    on = [contract.column(c) for r, c in columns if r == rule]
    return bool(on) and not any(c.blocks(rule) for c in on)


def _references_only_warn(contract: Contract) -> bool:
    keys = contract.foreign_keys
    return bool(keys) and all(k.severity == "warning" for k in keys)


def evaluate_rules(
    contract: Contract,
    frame: pl.DataFrame,
    lake: Lake,
    *,
    table_rows: int | None = None,
    table_columns: dict[str, str] | None = None,
) -> list[RuleOutcome]:
    """Evaluate every rule of the contract on `frame`, the rows as written (one per primary
    key: a replayed or corrected file's duplicates are gone); uniqueness of a merged
    product is judged on its whole table.

    `table_rows` is the product's row count after the write (row_count rule) and
    `table_columns` the Delta table's column → type (schema rule)."""
    rules = rules_for(contract)
    outcomes = {rule: RuleOutcome(rule) for rule in rules}
    counts = _column_counts(contract, frame)
    for (rule, column), failing in counts.items():
        if rule in outcomes:
            outcomes[rule].failures[column] = failing
    for outcome in outcomes.values():  # broken only where the contract says warning
        broken = [c for c, n in outcome.failures.items() if n]
        if outcome.rule in ROW_RULES and broken:
            outcome.warn_only = not any(contract.column(c).blocks(outcome.rule) for c in broken)
    if "unique" in outcomes:
        # A merge updates rows in place: uniqueness is a property of the whole table.
        keyed = frame
        if contract.write_mode == "merge":
            unique_cols = list(
                dict.fromkeys(contract.primary_key + [c.name for c in contract.columns if c.unique])
            )
            keyed = lake.scan(contract.key).select(unique_cols).collect()
        outcomes["unique"].failures.update(_duplicates(contract, keyed))
    if "schema" in outcomes:
        outcomes["schema"] = _schema_outcome(
            contract, table_columns or dict((k, str(v)) for k, v in frame.schema.items())
        )
    if "row_count" in outcomes:
        rows = frame.height if table_rows is None else table_rows
        outcome = outcomes["row_count"]
        outcome.details = {"rows": rows, "minimum": contract.min_row_count}
        outcome.failures["rows"] = int(rows < contract.min_row_count)
    if "referential_integrity" in outcomes:
        outcomes["referential_integrity"] = _references(contract, frame, lake)
    return [outcomes[r] for r in rules]


def row_rules(contract: Contract, columns: list[str]) -> dict[tuple[str, str], pl.Expr]:
    """The row-level rules (not_null, accepted_values, range) per column, each as the
    expression that is True on a row breaking it: the one definition both the screen
    before a write and the check after it evaluate."""
    exprs: dict[tuple[str, str], pl.Expr] = {}
    for col in contract.columns:
        if col.name not in columns:
            continue
        c = pl.col(col.name)
        if col.required:
            exprs[("not_null", col.name)] = c.is_null()
        if col.accepted_values:
            exprs[("accepted_values", col.name)] = ~c.is_in(col.accepted_values) & c.is_not_null()
        broken = [
            ~getattr(c, _OPS[option])(_bound(bound, col.dtype)) & c.is_not_null()
            for option, bound in col.bounds.items()
        ]
        if broken:
            exprs[("range", col.name)] = pl.any_horizontal(broken)
    return exprs


def _column_counts(contract: Contract, frame: pl.DataFrame) -> dict[tuple[str, str], int]:
    """One pass: failing-row counts for not_null, accepted_values and range per column."""
    return _counts(frame, row_rules(contract, frame.columns))


def _counts(frame: pl.DataFrame, exprs: dict[tuple[str, str], pl.Expr]) -> dict[Any, int]:
    if not exprs:
        return {}
    row = frame.select([e.sum().alias(str(i)) for i, e in enumerate(exprs.values())]).row(0)
    return {key: int(v or 0) for key, v in zip(exprs, row, strict=True)}


def screen_rows(contract: Contract, frame: pl.DataFrame) -> list[Violation]:
    """The frame's rows breaking a blocking row-level rule (severity error), per rule and
    column; rules whose severity is warning are left to the check after the write."""
    exprs = {
        (rule, column): expr
        for (rule, column), expr in row_rules(contract, frame.columns).items()
        if contract.column(column).blocks(rule)
    }
    return [
        violation(contract, frame, rule, column, exprs[(rule, column)], n)
        for (rule, column), n in _counts(frame, exprs).items()
        if n
    ]


def _bound(bound: Any, dtype: pl.DataType) -> Any:
    return _parse_bound(bound, dtype) if isinstance(bound, str) else bound  # ISO dates


def _parse_bound(bound: str, dtype: pl.DataType) -> Any:
    if dtype == pl.Date:
        return date.fromisoformat(bound)
    if isinstance(dtype, pl.Datetime):
        return datetime.fromisoformat(bound)
    return pl.lit(bound).cast(dtype)


def _duplicates(contract: Contract, frame: pl.DataFrame) -> dict[str, int]:
    found = {}
    if contract.primary_key:
        found["+".join(contract.primary_key)] = duplicate_count(frame, contract.primary_key)
    for col in contract.columns:
        if col.unique and not col.primary_key and col.name in frame.columns:
            values = frame[col.name].drop_nulls()
            found[col.name] = values.len() - values.n_unique()
    return found


def _schema_outcome(contract: Contract, table_columns: dict[str, str]) -> RuleOutcome:
    outcome = RuleOutcome("schema")
    expected = {c.name: c.dtype for c in contract.columns}
    for name, dtype in expected.items():
        actual = table_columns.get(name)
        if actual is None:
            outcome.failures[name] = 1
            outcome.details[name] = "missing"
        elif not _same_type(dtype, actual):
            outcome.failures[name] = 1
            outcome.details[name] = f"expected {dtype}, found {actual}"
    for name in table_columns:
        if name not in expected:
            outcome.failures[name] = 1
            outcome.details[name] = "not in the contract"
    return outcome


def _same_type(expected: pl.DataType, actual: str) -> bool:
    aliases = {
        pl.String(): {
            "String",
            "string",
            "large_string",
            "string_view",
            "Utf8",
            "LargeUtf8",
            "Utf8View",
        },
        pl.Int64(): {"Int64", "int64", "long"},
        pl.Float64(): {"Float64", "double", "float64"},
        pl.Boolean(): {"Boolean", "bool", "boolean"},
        pl.Date(): {"Date", "date32[day]", "date", "Date32"},
    }
    if isinstance(expected, pl.Datetime):
        return actual.lower().startswith(("datetime", "timestamp"))
    return actual in aliases.get(expected, {str(expected)})


@dataclass(frozen=True, eq=False)
class Orphans:
    """One relationship of a frame's columns: its rows whose key is missing in the parent."""

    key: ForeignKey
    rows: int  # rows with a key (every column of a composite one set)
    orphan_rows: int
    orphans: int  # distinct missing keys
    sample: list[Any]
    mask: pl.Expr  # True on an orphan row
    materialized: bool = True

    @property
    def column(self) -> str:
        return ", ".join(self.key.columns)

    @property
    def label(self) -> str:
        return self.key.label

    @property
    def severity(self) -> str:
        return self.key.severity

    @property
    def share(self) -> float:
        return self.orphan_rows / self.rows if self.rows else 0.0

    @property
    def broken(self) -> bool:
        """Beyond tolerance (or not judged: the parent was never materialized)."""
        tolerated = self.key.max_orphan_share
        return not self.materialized or (self.orphan_rows > 0 and self.share > tolerated)

    def describe(self) -> str:
        if not self.materialized:
            return f"{self.key.target} has not been materialized"
        return (
            f"{self.orphans:,} value(s) missing in {self.key.target} on {self.orphan_rows:,} "
            f"of {self.rows:,} rows ({self.share:.2%}; tolerated "
            f"{self.key.max_orphan_share:.2%}), e.g. {self.sample}"
        )


def orphans(contract: Contract, frame: pl.DataFrame, lake: Lake) -> list[Orphans]:
    """Each relationship of the frame's columns with its orphan rows and keys: the one
    definition both the screen before a write and the check after it evaluate. A
    composite key is matched as a whole, on rows where every one of its columns is set
    (SQL's MATCH SIMPLE)."""
    found = []
    for key in contract.foreign_keys:
        if not set(key.columns) <= set(frame.columns):
            continue
        value = _key_value(key.columns)
        known = _parent_keys(lake, key.target, key.target_columns)
        keyed = pl.all_horizontal([pl.col(c).is_not_null() for c in key.columns])
        missing = keyed if known is None else keyed & ~value.is_in(known.implode())
        counts = frame.select(
            rows=keyed.sum(),
            orphan_rows=missing.sum(),
            orphans=value.filter(missing).n_unique(),
            sample=value.filter(missing).unique().sort().head(SAMPLE_KEYS).implode(),
        ).row(0, named=True)
        found.append(
            Orphans(
                key,
                counts["rows"],
                counts["orphan_rows"],
                counts["orphans"],
                counts["sample"],
                missing,
                known is not None,
            )
        )
    return found


def _key_value(columns: tuple[str, ...]) -> pl.Expr:
    """A key's value: the column, or a struct of a composite key's columns."""
    return pl.col(columns[0]) if len(columns) == 1 else pl.struct(columns)


_PARENT_KEYS: dict[tuple[str, str, int, tuple[str, ...]], pl.Series] = {}
_PARENTS_KEPT = 8


def _parent_keys(lake: Lake, target: str, columns: tuple[str, ...]) -> pl.Series | None:
    """The parent's distinct values of its key `columns` (None: never materialized), read
    once per version of its table: a load screens each of its files against the same
    parents."""
    try:
        table = lake.table(target)
    except TableNotFoundError:
        return None
    memo = (lake.uri(target), table.metadata().id, table.version(), columns)
    if memo not in _PARENT_KEYS:
        if len(_PARENT_KEYS) >= _PARENTS_KEPT:  # a few parents' keys, the oldest go first
            _PARENT_KEYS.pop(next(iter(_PARENT_KEYS)))
        keys = lake.scan(target).select(_key_value(columns).alias("key")).unique().collect()
        _PARENT_KEYS[memo] = keys["key"]
    return _PARENT_KEYS[memo]


def _references(contract: Contract, frame: pl.DataFrame, lake: Lake) -> RuleOutcome:
    """Orphans per relationship, judged against its tolerance (`maxOrphanShare`); the
    outcome warns instead of failing when every broken relationship is a `warning`."""
    outcome = RuleOutcome("referential_integrity")
    severities = set()
    for found in orphans(contract, frame, lake):
        outcome.failures[found.label] = found.orphans if found.broken else 0
        if found.orphan_rows or not found.materialized:
            outcome.details[found.label] = found.describe()
        if found.broken:
            severities.add(found.severity)
    outcome.warn_only = bool(severities) and severities == {"warning"}
    return outcome


def screen_references(contract: Contract, frame: pl.DataFrame, lake: Lake) -> list[Violation]:
    """The frame's orphan rows of each blocking relationship (severity error) beyond the
    contract's tolerance; within it, or when the parent was never materialized (nothing
    to judge against: the check after the write fails), nothing is screened."""
    return [
        violation(
            contract, frame, "referential_integrity", o.column, o.mask, o.orphan_rows, o.describe()
        )
        for o in orphans(contract, frame, lake)
        if o.severity != "warning" and o.materialized and o.broken
    ]


def check_results(
    contract: Contract, outcomes: list[RuleOutcome], asset_key: dg.AssetKey
) -> list[dg.AssetCheckResult]:
    """Outcomes as Dagster check results, with the evidence as metadata."""
    return [
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=f"contract_{o.rule}",
            passed=o.passed,
            severity=dg.AssetCheckSeverity.WARN if o.warn_only else dg.AssetCheckSeverity.ERROR,
            description=o.describe(),
            metadata={
                "failing": dg.MetadataValue.json({k: v for k, v in o.failures.items()}),
                **({"details": dg.MetadataValue.json(o.details)} if o.details else {}),
                "contract_version": contract.version,
            },
        )
        for o in outcomes
    ]


class ContractRules(CheckFamily):
    """The contract's rules: the row-level ones and referential integrity screen rows
    before a write; all of them are blocking checks judged on what was written."""

    name = "rules"

    def screen(self, contract: Contract, frame: pl.DataFrame, lake: Lake) -> list[Violation]:
        return screen_rows(contract, frame) + screen_references(contract, frame, lake)

    def specs(self, contract: Contract, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
        return contract_check_specs(contract, key)

    def evaluate(self, written: Written) -> FamilyResult:
        contract, lake = written.contract, written.lake
        outcomes = evaluate_rules(
            contract,
            written.frame,
            lake,
            table_rows=written.info.rows if written.info else None,
            table_columns=lake.column_types(contract.key),
        )
        written.findings[self.name] = outcomes  # the quality score builds on them
        return FamilyResult(check_results(contract, outcomes, written.key))
