"""Row-level derivations from ODCS `transformLogic`, parsed safely into polars expressions.

A property such as `net_amount` with `transformLogic: quantity * unit_price * (1 - discount)`
says how the column follows from others of the same row. sqlglot parses the text; only
arithmetic over the product's own columns, numeric literals and a few pure functions is
translated (nothing is ever evaluated as code). Anything else — aggregates such as
`sum(order_lines.net_amount)`, columns of other tables, subqueries — is not a row-level
derivation and is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import sqlglot
from sqlglot import exp

from dagster_project.core.contracts import Contract

_BINARY = {
    exp.Add: lambda a, b: a + b,
    exp.Sub: lambda a, b: a - b,
    exp.Mul: lambda a, b: a * b,
    exp.Div: lambda a, b: a / b,
}


class NotRowLevel(ValueError):
    """The text is not arithmetic over the row's own columns."""


@dataclass(frozen=True)
class Derivation:
    """`column` should equal `expr` (over `inputs`) on every row."""

    column: str
    text: str
    expr: pl.Expr
    inputs: tuple[str, ...]

    def formula(self) -> str:
        """The derivation in words a reader knows: `quantity × unit_price × (1 − discount)`."""
        return self.text.replace("*", "×").replace(" - ", " − ")


def to_polars(text: str, columns: set[str]) -> tuple[pl.Expr, tuple[str, ...]]:
    """A polars expression for arithmetic `text` over `columns`, and the columns it reads."""
    try:
        tree = sqlglot.parse_one(text)
    except sqlglot.errors.SqlglotError as exc:
        raise NotRowLevel(f"cannot parse {text!r}: {exc}") from exc
    used: list[str] = []
    return _translate(tree, columns, used), tuple(dict.fromkeys(used))


def _translate(node: exp.Expression, columns: set[str], used: list[str]) -> pl.Expr:
    if isinstance(node, exp.Paren):
        return _translate(node.this, columns, used)
    if isinstance(node, exp.Column):
        if node.table or node.name not in columns:
            raise NotRowLevel(f"{node.sql()} is not a column of this product")
        used.append(node.name)
        return pl.col(node.name).cast(pl.Float64)
    if isinstance(node, exp.Literal) and not node.is_string:
        return pl.lit(float(node.this))
    if isinstance(node, exp.Neg):
        return -_translate(node.this, columns, used)
    for kind, combine in _BINARY.items():
        if type(node) is kind:
            return combine(
                _translate(node.this, columns, used), _translate(node.expression, columns, used)
            )
    if isinstance(node, exp.Abs):
        return _translate(node.this, columns, used).abs()
    if isinstance(node, exp.Round):
        digits = node.args.get("decimals")
        places = int(digits.this) if isinstance(digits, exp.Literal) else 0
        return _translate(node.this, columns, used).round(places)
    if isinstance(node, exp.Coalesce):
        parts = [node.this, *node.expressions]
        return pl.coalesce([_translate(p, columns, used) for p in parts])
    raise NotRowLevel(f"{node.sql()!r} is not row-level arithmetic")


def derivations(contract: Contract) -> list[Derivation]:
    """Every row-level derivation the contract declares (others are skipped)."""
    names = set(contract.column_names)
    found = []
    for column in contract.columns:
        text = column.prop.transformLogic
        if not text:
            continue
        try:
            expr, inputs = to_polars(text, names - {column.name})
        except NotRowLevel:
            continue
        if inputs:
            found.append(Derivation(column.name, text, expr, inputs))
    return found
