"""Anomaly features from a product's contract, and explanations in plain words.

Every measure (a numeric column that is not a key or id) is compared with what is usual
for it — across all rows and within each configured group (store, product, channel…) —
as a robust z-score: how many "usual spreads" (scaled median absolute deviation) a value
sits from the group's median. Ratio-scale measures (always positive) are compared on a
log scale, so "14× the usual" and "a fifth of the usual" are equally far. Each row-level
derivation the contract declares (ODCS `transformLogic`) adds a residual: how far the
column is from what its formula gives.

The fitted statistics are small tables (one row per group value), so scoring is a few
polars joins however large the new data is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from dagster_project.checks.quality.config import AnomalyConfig, is_measure
from dagster_project.checks.quality.derivation import Derivation, derivations, to_polars
from dagster_project.core.contracts import Contract

ALL_ROWS = "*"  # the group of every row: values odd whatever their context
CLIP = 50.0  # z-scores beyond this carry no more information
MIN_GROUP_ROWS = 20  # values of a measure a group needs, else all rows judge it alone
FLOOR_SHARE = 0.05  # a group's spread is at least this share of the overall spread
DERIVATION_TOLERANCE = 0.01  # 1% off a formula is rounding, not an anomaly
EXPLAIN_Z = 4.0  # deviations at least this large are named in explanations
NORMAL_Z = 3.0  # below this a value is called normal
TAIL_SHARE = 0.02  # deviations this share of the reference reaches are normal (<= NORMAL_Z)


@dataclass(frozen=True)
class Measure:
    name: str
    log: bool  # ratio scale: compared as logs, explained as multiples of the usual
    integer: bool

    @property
    def feature(self) -> str:
        return f"__x_{self.name}"


def robust_scale(values: pl.Expr) -> pl.Expr:
    """1.4826 × MAD (σ for normal data), but never so small that what the data's own tail
    does often looks extreme: the deviation that TAIL_SHARE of the values reach or pass
    is at most NORMAL_Z scales (for normal data the MAD already ensures it). A count that
    is mostly 1 (MAD 0) with 3 now and then, or a skewed amount, gets the spread of its
    tail; the few outliers being sought are too rare to widen it. When the MAD is 0 and
    the tail is flat too, the standard deviation after clipping the outer 2%."""
    deviation = (values - values.median()).abs()
    mad = deviation.median() * 1.4826
    tail = deviation.quantile(1 - TAIL_SHARE, "lower") / NORMAL_Z
    clipped = values.clip(values.quantile(0.02, "lower"), values.quantile(0.98, "higher"))
    spread = pl.when(mad > 0).then(mad).otherwise(clipped.std().fill_null(0.0))
    return pl.max_horizontal(spread, tail.fill_null(0.0))


@dataclass
class FeatureProfile:
    """What is usual for each measure, overall and per group; fitted on history."""

    measures: list[Measure]
    groups: list[str]
    derivation_texts: dict[str, str]  # column → transformLogic
    column_names: frozenset[str] = frozenset()  # what a formula may refer to
    overall: dict[str, tuple[float, float]] = field(default_factory=dict)  # median, scale
    floors: dict[str, float] = field(default_factory=dict)
    group_stats: dict[str, pl.DataFrame] = field(default_factory=dict)
    residual_scale: dict[str, float] = field(default_factory=dict)
    _derivations: list[Derivation] | None = field(default=None, repr=False)

    # -- construction -------------------------------------------------------------
    @classmethod
    def for_contract(cls, contract: Contract, config: AnomalyConfig) -> FeatureProfile:
        names = config.columns or tuple(c.name for c in contract.columns if is_measure(c))
        measures = [
            Measure(n, log=False, integer=contract.column(n).logical_type == "integer")
            for n in names
        ]
        texts = {d.column: d.text for d in derivations(contract)}
        return cls(measures, [ALL_ROWS, *config.groups], texts, frozenset(contract.column_names))

    @property
    def derivations(self) -> list[Derivation]:
        if self._derivations is None:
            found = []
            for column, text in self.derivation_texts.items():
                expr, inputs = to_polars(text, set(self.column_names - {column}))
                found.append(Derivation(column, text, expr, inputs))
            self._derivations = found
        return self._derivations

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_derivations": None}  # expressions are rebuilt on load

    @property
    def feature_names(self) -> list[str]:
        names = [f"{m.name}|{g}" for g in self.groups for m in self.measures]
        return names + [f"{d.column}|formula" for d in self.derivations]

    def columns_needed(self) -> list[str]:
        needed = [m.name for m in self.measures] + [g for g in self.groups if g != ALL_ROWS]
        for d in self.derivations:
            needed += [d.column, *d.inputs]
        return list(dict.fromkeys(needed))

    # -- fitting ------------------------------------------------------------------
    def fit(self, frame: pl.DataFrame) -> FeatureProfile:
        """Learn medians and spreads from `frame` (history: a bounded sample)."""
        self.measures = [
            Measure(m.name, (frame[m.name].drop_nulls().min() or 0) > 0, m.integer)
            if frame.height
            else m
            for m in self.measures
        ]
        values = self._values(frame)
        overall = values.select(
            *[pl.col(m.feature).median().alias(f"med_{m.name}") for m in self.measures],
            *[robust_scale(pl.col(m.feature)).alias(f"scale_{m.name}") for m in self.measures],
        ).row(0, named=True)
        for m in self.measures:
            median = float(overall[f"med_{m.name}"] or 0.0)
            scale = float(overall[f"scale_{m.name}"] or 0.0)
            self.overall[m.name] = (median, max(scale, 1e-9))
            self.floors[m.name] = max(FLOOR_SHARE * scale, self._resolution(m, median), 1e-6)
        groups = [g for g in self.groups if g != ALL_ROWS]
        fitted = pl.collect_all([self._fit_group(values.lazy(), g) for g in groups])
        self.group_stats = dict(zip(groups, fitted, strict=True))
        residuals = self._residuals(frame)
        for d in self.derivations:
            spread = residuals.select(robust_scale(pl.col(d.column))).item() or 0.0
            self.residual_scale[d.column] = max(float(spread), DERIVATION_TOLERANCE)
        return self

    @staticmethod
    def _resolution(measure: Measure, median: float) -> float:
        """Counts move in whole steps: one step from the usual count is never extreme."""
        if not measure.integer:
            return 0.0
        if measure.log:
            base = max(math.exp(median), 1.0)
            return math.log1p(1.0 / base) / 2
        return 0.5

    def _fit_group(self, values: pl.LazyFrame, group: str) -> pl.LazyFrame:
        """Median and spread per group value and measure, from the measure's own values:
        a group with rows but (almost) no values of a measure has no usual for it."""
        aggs = []
        for m in self.measures:
            x = pl.col(m.feature)
            known = x.count() >= MIN_GROUP_ROWS
            scale = pl.max_horizontal(robust_scale(x), pl.lit(self.floors[m.name]))
            aggs += [
                pl.when(known).then(x.median()).alias(f"med_{m.name}"),
                pl.when(known).then(scale).alias(f"scale_{m.name}"),
            ]
        stats = values.group_by(group).agg(*aggs)
        return stats.filter(
            pl.any_horizontal(pl.col(f"med_{m.name}").is_not_null() for m in self.measures)
        )

    # -- features -----------------------------------------------------------------
    def _values(self, frame: pl.DataFrame) -> pl.DataFrame:
        exprs = []
        for m in self.measures:
            x = pl.col(m.name).cast(pl.Float64)
            exprs.append((x.log() if m.log else x).alias(m.feature))
        groups = [g for g in self.groups if g != ALL_ROWS]
        return frame.select(*groups, *exprs)

    def _residuals(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Relative difference to the formula, symmetric and bounded in [-2, 2]."""
        exprs = []
        for d in self.derivations:
            actual = pl.col(d.column).cast(pl.Float64)
            mean_size = ((actual.abs() + d.expr.abs()) / 2).clip(lower_bound=1e-9)
            exprs.append(((actual - d.expr) / mean_size).fill_nan(0.0).alias(d.column))
        return frame.select(exprs) if exprs else pl.DataFrame()

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        """The z-score matrix (rows × `feature_names`), clipped to ±CLIP."""
        return self._z_frame(frame).to_numpy()

    def _z_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """One lazy query: the group statistics joined in, every z-score computed."""
        groups = [g for g in self.groups if g != ALL_ROWS]
        plan = self._values(frame).lazy()
        if self.derivations:
            plan = plan.with_columns(self._residuals(frame).rename(lambda c: f"__r_{c}"))
        for g in groups:
            stats = (
                self.group_stats[g]
                .lazy()
                .select(
                    g, *[pl.col(c).alias(f"{c}|{g}") for c in self.group_stats[g].columns if c != g]
                )
            )
            plan = plan.join(stats, on=g, how="left", maintain_order="left")
        exprs = []
        for g in self.groups:
            for m in self.measures:
                median, scale = self.overall[m.name]
                scale = max(scale, self.floors[m.name])
                if g != ALL_ROWS:  # no usual in the group: 0 here, the all-rows feature judges
                    median = pl.col(f"med_{m.name}|{g}")
                    scale = pl.col(f"scale_{m.name}|{g}")
                z = ((pl.col(m.feature) - median) / scale).fill_nan(0.0).fill_null(0.0)
                exprs.append(z.clip(-CLIP, CLIP).alias(f"{m.name}|{g}"))
        for d in self.derivations:
            z = (pl.col(f"__r_{d.column}") / self.residual_scale[d.column]).fill_null(0.0)
            exprs.append(z.clip(-CLIP, CLIP).alias(f"{d.column}|formula"))
        return plan.select(exprs).collect()

    def _joined(self, values: pl.DataFrame, group: str) -> pl.DataFrame:
        if group == ALL_ROWS:
            return values
        stats = self.group_stats[group]
        return values.join(stats, on=group, how="left", maintain_order="left")

    def _usual(
        self, joined: pl.DataFrame, group: str, m: Measure
    ) -> tuple[pl.Series | float, pl.Series | float]:
        """Median and spread per row: the group's, else all rows' (small or new groups)."""
        median, scale = self.overall[m.name]
        scale = max(scale, self.floors[m.name])
        if group == ALL_ROWS:
            return median, scale
        return (
            joined[f"med_{m.name}"].fill_null(median),
            joined[f"scale_{m.name}"].fill_null(scale),
        )

    # -- explanations -------------------------------------------------------------
    def explain(self, frame: pl.DataFrame, z: np.ndarray, labels: list[str]) -> list[str]:
        """One sentence per row of `frame` (its z-scores in `z`), e.g.
        "order 123 line 2: net_amount 9,870.00 is 14× the usual for product 55 (about
        705.00); quantity is normal"."""
        index = {name: j for j, name in enumerate(self.feature_names)}
        numbers = {m.name for m in self.measures} | {d.column for d in self.derivations}
        values = {  # measures as floats: decimals and every integer width read alike
            c: (frame[c].cast(pl.Float64) if c in numbers else frame[c]).to_list()
            for c in self.columns_needed()
        }
        expected = {d.column: frame.select(d.expr).to_series().to_list() for d in self.derivations}
        usual = self._usual_values(frame)
        sentences = []
        for i, label in enumerate(labels):
            phrases: list[tuple[float, str]] = []
            normal: list[str] = []
            for d in self.derivations:
                score = abs(z[i, index[f"{d.column}|formula"]])
                phrases.append(
                    (score, _formula_phrase(d, values[d.column][i], expected[d.column][i]))
                )
            for m in self.measures:
                group = max(self.groups, key=lambda g: abs(z[i, index[f"{m.name}|{g}"]]))
                score = abs(z[i, index[f"{m.name}|{group}"]])
                if values[m.name][i] is None:  # missing: neither odd nor normal
                    continue
                if score < NORMAL_Z:
                    normal.append(m.name)
                    continue
                where = None if group == ALL_ROWS else _entity(group, values[group][i])
                value, typical = values[m.name][i], usual[(m.name, group)][i]
                phrases.append((score, _measure_phrase(m, value, typical, where)))
            phrases.sort(key=lambda p: -p[0])
            if not phrases:  # each value within its usual range: odd only together
                sentences.append(f"{label}: {_combination(normal, values, i)}")
                continue
            named = [p for score, p in phrases if score >= EXPLAIN_Z][:3] or [phrases[0][1]]
            text = "; ".join(named)
            if normal:
                text += f"; {_join(normal)} {'is' if len(normal) == 1 else 'are'} normal"
            sentences.append(f"{label}: {text}")
        return sentences

    def _usual_values(self, frame: pl.DataFrame) -> dict[tuple[str, str], list[float]]:
        """The usual value (in the column's units) of each measure per group, per row."""
        values = self._values(frame)
        usual: dict[tuple[str, str], list[float]] = {}
        for group in self.groups:
            joined = self._joined(values, group)
            for m in self.measures:
                median, _ = self._usual(joined, group, m)
                if not isinstance(median, pl.Series):
                    median = pl.Series([median] * len(joined), dtype=pl.Float64)
                usual[(m.name, group)] = (median.exp() if m.log else median).to_list()
        return usual


def _measure_phrase(m: Measure, value: float, typical: float, where: str | None) -> str:
    context = f"for {where}" if where else "across all rows"
    if m.log and value and typical:
        size = f"{_ratio(value / typical)} the usual"
    else:
        size = "much higher than the usual" if value > typical else "much lower than the usual"
    return f"{m.name} {_number(value)} is {size} {context} (about {_number(typical)})"


def _formula_phrase(d: Derivation, actual: float | None, expected: float | None) -> str:
    how = f", {_ratio(actual / expected)} what it should be" if expected and actual else ""
    return f"{d.column} {_number(actual)} does not match {d.formula()} = {_number(expected)}{how}"


def _combination(names: list[str], values: dict[str, list], row: int) -> str:
    if not names:
        return "an unusual row (its values are missing)"
    shown = _join([f"{n} {_number(values[n][row])}" for n in names])
    return f"an unusual combination: {shown} (each within its usual range, not together)"


def _ratio(ratio: float) -> str:
    if ratio >= 1.95:
        return f"{ratio:.0f}×"
    if ratio >= 1:
        return f"{ratio:.1f}×"
    inverse = 1 / ratio if ratio > 0 else float("inf")
    return f"1/{inverse:.0f} of" if inverse >= 1.95 else f"{ratio:.1f}×"


def _number(value: float | int | None) -> str:
    if value is None:
        return "missing"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _entity(column: str, value: object) -> str:
    """`product_id`, 55 → "product 55"; `channel`, "online" → "channel online"."""
    for suffix in ("_id", "_number", "_no", "_key"):
        if column.endswith(suffix):
            return f"{column.removesuffix(suffix).replace('_', ' ')} {value}"
    return f"{column.replace('_', ' ')} {value}"


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def row_labels(frame: pl.DataFrame, keys: list[str]) -> list[str]:
    """How a person names a row: "order 123 line 2" from its primary key."""
    if not keys:
        return [f"row {i + 1}" for i in range(frame.height)]
    columns = [frame[k].to_list() for k in keys]
    return [
        " ".join(_entity(k, v) for k, v in zip(keys, values, strict=True))
        for values in zip(*columns, strict=True)
    ]
