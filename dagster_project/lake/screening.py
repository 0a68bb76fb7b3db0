"""Screening rows before a write: what a broken row-level rule looks like to the lake.

The rules themselves live above this layer (`checks.rules`); a product's builder hands
the loader a `Screen`, a function returning the `Violation`s of a frame. Each violation
carries the rule's own row expression (`mask`: True on a breaking row), so the rows
set aside are exactly the rows the after-write check would count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from dagster_project.core.contracts import Contract

SAMPLE_KEYS = 5
ROW_NUMBER = "row"  # the sample key of a product without a primary key: the row's number


@dataclass(frozen=True, eq=False)
class Violation:
    """Rows of a frame that break one blocking rule on one column."""

    rule: str
    column: str
    rows: int
    sample_keys: list[dict[str, Any]] = field(default_factory=list)
    mask: pl.Expr = field(default_factory=lambda: pl.lit(False))
    detail: str = ""  # what else the rule measured (orphans: the missing values)

    def describe(self) -> str:
        counted = f"{self.rule} on {self.column}: {self.rows:,} row(s)"
        return f"{counted} ({self.detail})" if self.detail else counted

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "column": self.column,
            "failing_rows": self.rows,
            "sample_keys": self.sample_keys,
            **({"detail": self.detail} if self.detail else {}),
        }


Screen = Callable[[Contract, pl.DataFrame], list[Violation]]  # a product's, bound to its lake


def violation(
    contract: Contract,
    frame: pl.DataFrame,
    rule: str,
    column: str,
    mask: pl.Expr,
    rows: int,
    detail: str = "",
) -> Violation:
    """A violation with up to `SAMPLE_KEYS` primary keys (else row numbers) of its rows."""
    keys = contract.primary_key or [ROW_NUMBER]
    sample = (
        frame.with_row_index(ROW_NUMBER, offset=1)
        .filter(mask.fill_null(False))
        .select(keys)
        .head(SAMPLE_KEYS)
    )
    return Violation(rule, column, rows, sample.to_dicts(), mask, detail)


def breaking(violations: list[Violation]) -> pl.Expr:
    """True on a row that breaks any of the violations' rules."""
    return pl.any_horizontal([v.mask.fill_null(False) for v in violations])


def split_rows(
    frame: pl.DataFrame, violations: list[Violation]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(good rows, breaking rows) of a screened frame."""
    if not violations:
        return frame, frame.clear()
    bad = frame.select(breaking(violations)).to_series()
    return frame.filter(~bad), frame.filter(bad)


def summary(violations: list[Violation]) -> str:
    """One line: each broken rule with its count and sample keys."""
    return "; ".join(f"{v.describe()}, e.g. {_keys(v.sample_keys)}" for v in violations)


def _keys(sample: list[dict[str, Any]]) -> str:
    """`[3; 7]` for one key column, `[order_id=3, line_number=1; ...]` for several."""
    shown = [
        ", ".join(f"{k}={v}" for k, v in row.items()) if len(row) > 1 else str(*row.values())
        for row in sample
    ]
    return "[" + "; ".join(shown) + "]"
