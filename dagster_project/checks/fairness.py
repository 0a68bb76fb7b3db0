"""Fairness across segments: do a product's outputs serve every segment alike?

A contract declares, on its columns (`customProperties`, property `fairness`):

```yaml
- name: region                 # a segment attribute of the product itself
  customProperties: [{property: fairness, value: segment}]
- name: store_id               # attributes of the row it references
  customProperties:
    - property: fairness
      value: {segments: [region]}
- name: customer_id            # a date per person is not a segment: band it (ageBands
                               # also band a number, such as an age in years)
  customProperties:
    - property: fairness
      value: {segments: [{column: birth_date, ageBands: [25, 35, 50, 65], as: age_band}]}
- name: predicted_units        # an output to watch, with its ground truth
  customProperties:
    - property: fairness
      value:
        output: forecast
        actual: sales.daily_sales.units       # ground truth, looked up by the key columns
        join: {forecast_date: order_date}     # key columns named otherwise there
        absent: 0                             # no sales row that day: 0 units sold
- name: rfm_segment            # a segment assignment or recommendation: selection rates
  customProperties: [{property: fairness, value: {output: selection}}]
- name: churned                # a classifier's output against its actual label
  customProperties:
    - property: fairness
      value: {output: classification, actual: churned_actual, positive: true}
```

FairnessThresholds (`maxErrorGap`, relative; `maxRateGap`, absolute; `minRows` per group) come
from the contract's own `fairness` custom property, else from the governance policy.
Metrics per group are what fairlearn's `MetricFrame` gives (tested against it, computed
directly: MetricFrame took 20 s over 300k rows): WAPE for forecasts, selection
rate for assignments, error rate for classifiers. A group with fewer
than `minRows` rows is neither judged nor named, so no finding can describe a person.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from dagster_project.checks.policies import Policy, PolicyResult, load_policies
from dagster_project.checks.quality.drift import Segment, resolve_segments, with_segments
from dagster_project.core.contracts import Contract, ContractError, parse_reference
from dagster_project.lake.storage import Lake

PROPERTY = "fairness"
FAIRNESS_CHECK = f"policy_{PROPERTY}"  # the asset check the shared policy runs as
KINDS = ("forecast", "selection", "classification")
MAX_GROUPS = 50  # more values than this is an identifier, not a segment
MAX_SELECTED_VALUES = 20  # values of an assignment judged (the most frequent)
Z_ONE_SIDED = 1.645  # a gap counts only if it holds at 95% confidence (chance allowed for)
BOOTSTRAP = 200  # resamples of a group's rows for the confidence in its WAPE
BOOTSTRAP_ROWS = 5_000  # rows resampled at most: more moves the bound by little


@dataclass(frozen=True)
class FairnessThresholds:
    maxErrorGap: float = 0.25  # worst group's WAPE this much (relative) above the others'
    maxRateGap: float = 0.20  # a rate (selection, error) this many points from the others'
    minRows: int = 30  # fewer rows in a group: not judged, not named

    @classmethod
    def of(cls, contract: Contract, default: FairnessThresholds) -> FairnessThresholds:
        own = contract.custom(PROPERTY) or {}
        if not isinstance(own, dict):
            raise ContractError(contract.key, "customProperties/fairness", "expected a mapping")
        unknown = set(own) - set(cls.__dataclass_fields__)
        if unknown:
            raise ContractError(
                contract.key,
                "customProperties/fairness",
                f"unknown setting(s) {', '.join(sorted(unknown))}; "
                f"use {', '.join(cls.__dataclass_fields__)}",
            )
        return cls(**{**default.__dict__, **own})


@dataclass(frozen=True)
class OutputSpec:
    column: str
    kind: str
    actual: str | None = None  # own column, or domain.product.column
    join: dict[str, str] = field(default_factory=dict)  # own key column -> actual's column
    positive: Any = True
    absent: Any = None  # the actual of a row its product has none for (e.g. 0 units sold)


@dataclass(frozen=True)
class FairnessSpec:
    segments: tuple[Segment, ...]
    outputs: tuple[OutputSpec, ...]

    @classmethod
    def of(cls, contract: Contract) -> FairnessSpec:
        segments, outputs = [], []
        for column in contract.columns:
            value = column.custom(PROPERTY)
            if value is None:
                continue
            where = f"{column.name}/customProperties/fairness"
            if value in (True, "segment"):
                value = {"segment": True}
            if not isinstance(value, dict):
                raise ContractError(contract.key, where, "expected `segment` or a mapping")
            if value.get("segment"):
                segments.append(_segment(contract, column.name, column.name, value, where))
            for attribute in value.get("segments", []):
                segments.append(_lookup_segment(contract, column.name, attribute, where))
            if "output" in value:
                outputs.append(_output(column.name, value, where, contract))
        return cls(tuple(segments), tuple(outputs))

    @property
    def declared(self) -> bool:
        return bool(self.segments and self.outputs)


def declares_fairness(contract: Contract) -> bool:
    return any(c.custom(PROPERTY) is not None for c in contract.columns)


def _segment(contract: Contract, spec: str, default: str, value: dict, where: str) -> Segment:
    try:
        (segment,) = resolve_segments(contract, (spec,))
    except ValueError as exc:
        raise ContractError(contract.key, where, str(exc)) from exc
    bands = tuple(int(b) for b in value.get("ageBands", ()))
    if bands != tuple(sorted(set(bands))):
        raise ContractError(contract.key, where, "ageBands are increasing ages in years")
    return dataclasses.replace(segment, name=str(value.get("as", default)), age_bands=bands)


def _lookup_segment(contract: Contract, column: str, attribute: Any, where: str) -> Segment:
    refs = contract.column(column).references
    if not refs:
        raise ContractError(contract.key, where, "segments of a column need a relationship")
    domain, product, _ = parse_reference(refs[0], contract.domain)
    value = attribute if isinstance(attribute, dict) else {"column": attribute}
    name = value.get("column")
    if not name:
        raise ContractError(contract.key, where, "each segment names a `column`")
    return _segment(contract, f"{domain}.{product}.{name}", name, value, where)


def _output(column: str, value: dict, where: str, contract: Contract) -> OutputSpec:
    kind = value["output"]
    if kind not in KINDS:
        raise ContractError(contract.key, where, f"output is one of {', '.join(KINDS)}")
    actual = value.get("actual")
    if kind != "selection" and not actual:
        raise ContractError(contract.key, where, f"a {kind} output needs its `actual`")
    join, absent = dict(value.get("join", {})), value.get("absent")
    return OutputSpec(column, kind, actual, join, value.get("positive", True), absent)


# -- measuring ------------------------------------------------------------------------


@dataclass(frozen=True)
class Disparity:
    """How far the worst-served group of one segment is from the rest."""

    output: str
    segment: str
    metric: str  # wape, selection_rate:<value>, error_rate
    group: str
    value: float
    rest: float
    gap: float  # relative for wape, absolute points for rates
    threshold: float
    rows: int  # the group's rows
    total: int
    groups: dict[str, float]
    assured: float  # the gap that holds at 95% confidence (smaller on fewer rows)

    @property
    def flagged(self) -> bool:
        return self.assured > self.threshold

    def sentence(self) -> str:
        where = f"{self.segment} = {self.group}"
        on = f"on {self.rows:,} of {self.total:,} rows"
        relative = self.metric == "wape"
        limit = f"{self.threshold:.0%}" if relative else f"{self.threshold * 100:g}-point"
        if self.flagged:
            verdict = f"above the {limit} threshold even allowing for chance"
        elif self.gap > self.threshold:
            least = f"{self.assured:.0%}" if relative else f"{self.assured * 100:.1f} points"
            verdict = f"only {least} for sure on so few rows: within the {limit} threshold"
        else:
            verdict = f"within the {limit} threshold"
        if relative:
            return (
                f"forecast error (WAPE) of {self.output} for {where} is {self.value:.3f}, "
                f"{self.gap:.0%} above the other groups' {self.rest:.3f} ({verdict}), {on}"
            )
        gap = f"a gap of {self.gap * 100:.1f} points ({verdict}), {on}"
        if self.metric == "error_rate":
            return (
                f"error rate of {self.output} for {where} is {self.value:.1%} against "
                f"{self.rest:.1%} for the other groups, {gap}"
            )
        label = self.metric.split(":", 1)[1]
        return (
            f"{self.output} = {label} is assigned to {self.value:.1%} of {where} against "
            f"{self.rest:.1%} of the other groups, {gap}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "flagged": self.flagged, "sentence": self.sentence()}


def error_disparity(
    frame: pl.DataFrame,
    segment: str,
    actual: str,
    predicted: str,
    th: FairnessThresholds,
    output: str,
) -> Disparity | None:
    """The group whose forecast error (WAPE) is furthest above the other groups'."""
    groups = _judged_groups(frame, segment, th)
    if groups is None:
        return None
    data = frame.filter(pl.col(segment).is_in(groups))
    labels = data[segment].cast(pl.String).to_numpy()
    truth = data[actual].cast(pl.Float64)
    actuals = truth.abs().to_numpy()
    errors = (data[predicted].cast(pl.Float64) - truth).abs().to_numpy()
    sums = _group_sums(labels, actuals, errors)
    all_act, all_err = sum(s[0] for s in sums.values()), sum(s[1] for s in sums.values())
    wapes = {g: round(err / act, 6) if act else float("nan") for g, (act, err, _) in sums.items()}
    best: Disparity | None = None
    for group, (act, err, n) in sums.items():
        rest_act = all_act - act
        if act <= 0 or rest_act <= 0:
            continue
        value, rest = err / act, (all_err - err) / rest_act
        gap = (value - rest) / rest if rest > 0 else (np.inf if value > 0 else 0.0)
        low = _wape_lower_bound(errors[labels == group], actuals[labels == group])
        assured = (low - rest) / rest if rest > 0 else gap
        candidate = Disparity(
            output,
            segment,
            "wape",
            group,
            value,
            rest,
            float(gap),
            th.maxErrorGap,
            n,
            data.height,
            wapes,
            float(assured),
        )
        if best is None or candidate.assured > best.assured:
            best = candidate
    return best


def rate_disparities(
    frame: pl.DataFrame, segment: str, output: OutputSpec, th: FairnessThresholds
) -> list[Disparity]:
    """Selection rate of each assigned value (or the error rate of a classifier) per group,
    with the group furthest from the rest for each."""
    groups = _judged_groups(frame, segment, th)
    if groups is None:
        return []
    data = frame.filter(pl.col(segment).is_in(groups)).with_columns(pl.col(segment).cast(pl.String))
    if output.kind == "classification":
        wrong = (pl.col(output.column) == output.positive) != (
            pl.col(output.actual) == output.positive
        )
        rates = {"error_rate": data.select(wrong.fill_null(True).cast(pl.Float64)).to_series()}
    else:
        common = data[output.column].drop_nulls().value_counts(sort=True).head(MAX_SELECTED_VALUES)
        rates = {
            f"selection_rate:{v}": (data[output.column] == v).fill_null(False).cast(pl.Float64)
            for v, n in common.iter_rows()
            if n >= th.minRows
        }
    groups = data[segment].to_numpy()
    return [
        _furthest(output.column, segment, metric, groups, hits.to_numpy(), th)
        for metric, hits in rates.items()
    ]


def _furthest(output, segment, metric, groups, hits, th) -> Disparity:
    sums = _group_sums(groups, hits, hits)
    total_hits, total = sum(s[0] for s in sums.values()), sum(s[2] for s in sums.values())
    best = None
    for group, (s, _, n) in sums.items():
        value, rest = s / n, (total_hits - s) / (total - n)
        error = np.sqrt(value * (1 - value) / n + rest * (1 - rest) / (total - n))
        candidate = Disparity(
            output,
            segment,
            metric,
            group,
            value,
            rest,
            abs(value - rest),
            th.maxRateGap,
            n,
            total,
            {g: round(h / m, 6) for g, (h, _, m) in sums.items()},
            float(abs(value - rest) - Z_ONE_SIDED * error),
        )
        if best is None or candidate.assured > best.assured:
            best = candidate
    return best


def _wape_lower_bound(errors: np.ndarray, actuals: np.ndarray) -> float:
    """The 5th percentile of a group's WAPE over bootstrap resamples of its rows (seeded,
    and over the rows in a canonical order: the same data, in whatever order a join or a
    group-by returned it, the same verdict)."""
    order = np.lexsort((errors, actuals))
    errors, actuals = errors[order], actuals[order]
    rng = np.random.default_rng(0)
    if len(errors) > BOOTSTRAP_ROWS:
        keep = rng.choice(len(errors), BOOTSTRAP_ROWS, replace=False)
        errors, actuals = errors[keep], actuals[keep]
    picks = rng.integers(0, len(errors), (BOOTSTRAP, len(errors)))
    totals = actuals[picks].sum(axis=1)
    wapes = np.where(totals > 0, errors[picks].sum(axis=1) / np.maximum(totals, 1e-12), np.nan)
    return float(np.nanquantile(wapes, 0.05))


def _judged_groups(frame: pl.DataFrame, segment: str, th: FairnessThresholds) -> list | None:
    """Groups with at least minRows rows; None when fewer than two (nothing to compare)
    or when the segment has so many values it identifies rows rather than groups."""
    counts = frame[segment].drop_nulls().value_counts()
    if counts.height > MAX_GROUPS:
        return None
    groups = counts.filter(pl.col("count") >= th.minRows)[segment].to_list()
    return groups if len(groups) >= 2 else None


def _group_sums(groups: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict:
    """Per group, sorted: (the sum of `a`, the sum of `b`, rows), the values fairlearn's
    `MetricFrame.by_group` gives, without its per-row stacking (20 s over 300k rows)."""
    sums = (
        pl.DataFrame({"g": groups, "a": a, "b": b})
        .drop_nulls("g")
        .group_by("g")
        .agg(pl.col("a").sum(), pl.col("b").sum(), pl.len())
        .sort("g")
    )
    return {g: (float(sa), float(sb), int(n)) for g, sa, sb, n in sums.iter_rows()}


# -- reading the product --------------------------------------------------------------


def _with_actual(lake: Lake, contract: Contract, frame: pl.LazyFrame, output: OutputSpec):
    """The output's rows with its ground truth as `__actual`: rows with a known actual,
    and with `absent` set, rows the actual's product has no row for (within its days)."""
    if True in output.join:  # YAML 1.1 reads a bare `on` key as a boolean
        raise ContractError(contract.key, output.column, "name the key mapping `join`, not `on`")
    if output.actual in contract.column_names:
        return frame.with_columns(pl.col(output.actual).alias("__actual")), None
    domain, product, column = parse_reference(output.actual, contract.domain)
    key = f"{domain}/{product}"
    if not lake.exists(key):
        return None, f"{output.column}: its actual {key} is not built yet"
    on = {k: output.join.get(k, k) for k in contract.primary_key}
    truth = lake.scan(key).select(
        *(pl.col(v).alias(k) for k, v in on.items()), pl.col(column).alias("__actual")
    )
    if output.absent is None:
        return frame.join(truth, on=list(on), how="inner"), None
    joined = frame.join(truth, on=list(on), how="left")
    days = [k for k in on if contract.column(k).logical_type in {"date", "timestamp"}]
    if days:  # beyond the actual's last day nothing is known yet, not "absent"
        last = truth.select(pl.col(days[0]).max()).collect().item()
        joined = joined.filter(pl.col(days[0]) <= last)
    return joined.with_columns(pl.col("__actual").fill_null(output.absent)), None


def measure(
    lake: Lake, contract: Contract, th: FairnessThresholds, today: date | None = None
) -> tuple[list[Disparity], list[str]]:
    """Every (output, segment) disparity of the product as it is in the lake, and what
    could not be judged, with why."""
    spec = FairnessSpec.of(contract)
    if not lake.exists(contract.key):
        return [], [f"{contract.key} is not built yet"]
    frame, segments, skipped = with_segments(lake, lake.scan(contract.key), spec.segments, today)
    found: list[Disparity] = []
    for output in spec.outputs:
        rows, why = (
            (frame, None)
            if output.kind == "selection"
            else _with_actual(lake, contract, frame, output)
        )
        if rows is None:
            skipped.append(why)
            continue
        data = rows.select(
            output.column, *(["__actual"] if output.actual else []), *segments
        ).collect()
        if output.actual:
            data = data.rename({"__actual": f"{output.column}__actual"})
        for segment in segments:
            if data[segment].dtype.is_temporal():  # one value a person, not a group
                skipped.append(f"{segment} is a date: declare ageBands to compare bands")
                continue
            found_here = _disparities(data, segment, output, th)
            if not found_here:
                skipped.append(
                    f"{output.column} by {segment}: fewer than two groups of {th.minRows}+ rows"
                )
            found += found_here
    return found, skipped


def _disparities(
    data: pl.DataFrame, segment: str, output: OutputSpec, th: FairnessThresholds
) -> list[Disparity]:
    actual = f"{output.column}__actual"
    if output.kind == "forecast":
        rows = data.drop_nulls([output.column, actual])
        d = error_disparity(rows, segment, actual, output.column, th, output.column)
        return [d] if d else []
    if output.kind == "classification":
        output = dataclasses.replace(output, actual=actual)
    return rate_disparities(data, segment, output, th)


# -- the policy -------------------------------------------------------------------------


def verdict(found: list[Disparity], skipped: list[str]) -> PolicyResult:
    """WARN on the widest flagged disparity; not judged when nothing could be compared."""
    metadata = {
        "disparities": [d.as_dict() for d in sorted(found, key=lambda d: -d.assured / d.threshold)],
        "not_judged": skipped,
    }
    if not found:
        return PolicyResult(False, "not judged: " + "; ".join(skipped), metadata, judged=False)
    flagged = [d for d in found if d.flagged]
    if flagged:
        worst = max(flagged, key=lambda d: d.assured / d.threshold)
        more = (
            f" ({len(flagged) - 1} more disparit{'y' if len(flagged) == 2 else 'ies'})"
            if len(flagged) > 1
            else ""
        )
        return PolicyResult(
            False, worst.sentence()[0].upper() + worst.sentence()[1:] + more, metadata
        )
    widest = max(found, key=lambda d: d.assured / d.threshold)
    return PolicyResult(
        True,
        f"{len(found)} comparison(s) within thresholds; the widest: {widest.sentence()}",
        metadata,
    )


@dataclass(frozen=True)
class _FairnessCheck:
    defaults: FairnessThresholds

    def __call__(self, contract: Contract, _previous: Contract | None, lake: Lake) -> PolicyResult:
        found, skipped = measure(lake, contract, FairnessThresholds.of(contract, self.defaults))
        return verdict(found, skipped)


def fairness_policy(defaults: FairnessThresholds | None = None) -> Policy:
    """The shared fairness policy, for products that declare segments and outputs."""
    return Policy(
        PROPERTY,
        "Outputs serve every declared segment alike (per-group metrics, as fairlearn gives them)",
        _FairnessCheck(defaults or FairnessThresholds()),
        uses_lake=True,
        applies=declares_fairness,
        severity="warn",
    )


def fairness_thresholds(contract: Contract) -> FairnessThresholds:
    """The contract's thresholds over the registered fairness policy's (the mesh's)."""
    registered = [p.check for p in load_policies() if isinstance(p.check, _FairnessCheck)]
    return FairnessThresholds.of(
        contract, registered[0].defaults if registered else FairnessThresholds()
    )


def worst_error_gap(
    lake: Lake, contract: Contract, frame: pl.DataFrame, actual: str, predicted: str
) -> Disparity | None:
    """The widest forecast-error gap over the contract's declared segments, on any frame
    with the product's key columns (a model's backtest before it publishes anything)."""
    spec, th = FairnessSpec.of(contract), fairness_thresholds(contract)
    lazy, segments, _ = with_segments(lake, frame.lazy(), spec.segments)
    rows = lazy.collect().drop_nulls([actual, predicted])
    found = [error_disparity(rows, s, actual, predicted, th, predicted) for s in segments]
    found = [d for d in found if d is not None]
    return max(found, key=lambda d: d.assured / d.threshold) if found else None
