"""Where a drift comes from: the segment it concentrates in, or a change of mix.

For a drifted column and each segment dimension (store, region, category, channel…),
the change is split the classic way:

- within each segment value: how much the column moved inside it (numbers: the mean's
  shift in units of the reference's spread; attributes: the total variation distance of
  the value shares), weighted by the value's share of rows. If one value carries most of
  that — far more than its share of rows — the drift is concentrated there ("unit_price
  rose 100% in category Electronics").
- mix: how much of the change is reproduced by only the segment's shares changing, with
  each value's own reference distribution kept ("payment_type shifted because the online
  share of orders rose from 22% to 80%").

Computed on the stratified samples, so the cost does not grow with the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

MIX_EXPLAINS = 0.6  # share of the change reproduced by the mix alone
CONCENTRATED = 0.5  # share of the within-segment change in one value...
LIFT = 2.0  # ...carried by rows that are at most half that share of the data
MIN_SEGMENT_ROWS = 30


@dataclass(frozen=True)
class RootCause:
    column: str
    kind: str  # "concentrated", "mix" or "spread"
    segment: str | None
    value: object | None
    sentence: str


def _shares(frame: pl.DataFrame, column: str) -> dict:
    counts = frame.group_by(column).agg(n=pl.len())
    total = counts["n"].sum() or 1
    return {row[0]: row[1] / total for row in counts.iter_rows()}


def _tvd(p: dict, q: dict) -> float:
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def _percent(x: float) -> str:
    return f"{x:.0%}" if x >= 0.01 or x == 0 else f"{x:.1%}"


def _number(x: float) -> str:
    return f"{x:,.2f}"


@dataclass
class _Split:
    segment: str
    mix_share: float
    top_value: object
    top_share: float  # of the within-segment change
    top_weight: float  # of the rows
    ref_stat: float | dict | None
    cur_stat: float | dict | None
    mix_from: float
    mix_to: float
    mix_value: object


def _numeric_split(ref: pl.DataFrame, cur: pl.DataFrame, column: str, segment: str) -> _Split:
    spread = ref[column].cast(pl.Float64).std() or 1.0
    stats = _segment_stats(ref, cur, column, segment, pl.col(column).cast(pl.Float64).mean())
    stats = stats.with_columns(
        change=(pl.col("stat_cur") - pl.col("stat_ref")).abs().fill_null(0.0)
        / spread
        * pl.col("w_cur")
    )
    total_shift = (cur[column].cast(pl.Float64).mean() or 0.0) - (
        ref[column].cast(pl.Float64).mean() or 0.0
    )
    mix_shift = stats.select(
        ((pl.col("w_cur") - pl.col("w_ref")) * pl.col("stat_ref").fill_null(0.0)).sum()
    ).item()
    mix_share = abs(mix_shift) / abs(total_shift) if total_shift else 0.0
    return _split(stats, segment, min(mix_share, 1.0))


def _categorical_split(ref: pl.DataFrame, cur: pl.DataFrame, column: str, segment: str) -> _Split:
    ref_by = _conditional(ref, column, segment)
    cur_by = _conditional(cur, column, segment)
    w_ref, w_cur = _shares(ref, segment), _shares(cur, segment)
    rows = []
    for value in set(w_ref) | set(w_cur):
        # too few rows on a side: its shares are noise, not a change
        enough = min(w_ref.get(value, 0.0) * ref.height, w_cur.get(value, 0.0) * cur.height)
        inside = _tvd(ref_by[value], cur_by[value]) if enough >= MIN_SEGMENT_ROWS else 0.0
        rows.append(
            {
                segment: value,
                "w_ref": w_ref.get(value, 0.0),
                "w_cur": w_cur.get(value, 0.0),
                "change": inside * w_cur.get(value, 0.0),
                "stat_ref": None,
                "stat_cur": None,
            }
        )
    stats = pl.DataFrame(rows, infer_schema_length=None)
    overall = _tvd(_shares(ref, column), _shares(cur, column))
    mix_only: dict = {}
    for value, weight in w_cur.items():
        for category, p in ref_by.get(value, {}).items():
            mix_only[category] = mix_only.get(category, 0.0) + weight * p
    mix_share = 1 - _tvd(mix_only, _shares(cur, column)) / overall if overall else 0.0
    return _split(stats, segment, max(0.0, min(mix_share, 1.0)))


def _conditional(frame: pl.DataFrame, column: str, segment: str) -> dict:
    counts = frame.group_by(segment, column).agg(n=pl.len())
    out: dict = {}
    for value, category, n in counts.iter_rows():
        out.setdefault(value, {})[category] = n
    return {v: {c: n / sum(d.values()) for c, n in d.items()} for v, d in out.items()}


def _segment_stats(
    ref: pl.DataFrame, cur: pl.DataFrame, column: str, segment: str, stat: pl.Expr
) -> pl.DataFrame:
    def per(frame: pl.DataFrame, suffix: str) -> pl.DataFrame:
        return frame.group_by(segment).agg(
            stat.alias(f"stat_{suffix}"),
            (pl.len() / frame.height).alias(f"w_{suffix}"),
            pl.len().alias(f"n_{suffix}"),
        )

    joined = per(ref, "ref").join(per(cur, "cur"), on=segment, how="full", coalesce=True)
    small = (pl.col("n_ref").fill_null(0) < MIN_SEGMENT_ROWS) | (
        pl.col("n_cur").fill_null(0) < MIN_SEGMENT_ROWS
    )
    return joined.with_columns(
        pl.col("w_ref", "w_cur").fill_null(0.0),
        pl.when(small).then(None).otherwise(pl.col("stat_cur")).alias("stat_cur"),
    )


def _split(stats: pl.DataFrame, segment: str, mix_share: float) -> _Split:
    total = stats["change"].sum() or 0.0
    top = stats.sort("change", descending=True).row(0, named=True)
    moved = (  # the value whose share moved most, a rise before an equal fall
        stats.with_columns(rise=pl.col("w_cur") - pl.col("w_ref"))
        .with_columns(delta=pl.col("rise").abs())
        .sort(["delta", "rise"], descending=True)
        .row(0, named=True)
    )
    return _Split(
        segment=segment,
        mix_share=mix_share,
        top_value=top[segment],
        top_share=top["change"] / total if total else 0.0,
        top_weight=top["w_cur"],
        ref_stat=top.get("stat_ref"),
        cur_stat=top.get("stat_cur"),
        mix_from=moved["w_ref"],
        mix_to=moved["w_cur"],
        mix_value=moved[segment],
    )


def _own_change(ref: pl.DataFrame, cur: pl.DataFrame, column: str, numeric: bool) -> str:
    if numeric:
        before = ref[column].cast(pl.Float64).mean() or 0.0
        after = cur[column].cast(pl.Float64).mean() or 0.0
        rel = f" ({(after - before) / before:+.0%})" if before else ""
        return f"mean {column} went from {_number(before)} to {_number(after)}{rel}"
    p, q = _shares(ref, column), _shares(cur, column)
    # the value that moved most (a rise before an equal fall): "online went from 22% to 80%"
    value = max(
        sorted(set(p) | set(q), key=str),
        key=lambda k: (abs(q.get(k, 0.0) - p.get(k, 0.0)), q.get(k, 0.0) - p.get(k, 0.0)),
    )
    return (
        f"{column} {value} went from {_percent(p.get(value, 0.0))} "
        f"to {_percent(q.get(value, 0.0))} of rows"
    )


def explain(
    ref: pl.DataFrame, cur: pl.DataFrame, column: str, numeric: bool, segments: list[str]
) -> RootCause:
    """The likely root cause of `column`'s drift between two samples, as a sentence."""
    change = _own_change(ref, cur, column, numeric)
    splits = []
    for segment in segments:
        if segment == column or segment not in ref.columns or segment not in cur.columns:
            continue
        split = _numeric_split if numeric else _categorical_split
        splits.append(split(ref, cur, column, segment))
    mixes = [
        s for s in splits if s.mix_share >= MIX_EXPLAINS and abs(s.mix_to - s.mix_from) >= 0.02
    ]
    if mixes:
        s = max(mixes, key=lambda s: s.mix_share)
        sentence = (
            f"{change}; explained by a change of mix in {s.segment}: {s.segment} "
            f"{s.mix_value} went from {_percent(s.mix_from)} to {_percent(s.mix_to)} of rows, "
            f"while {column} within each {s.segment} stayed about the same"
        )
        return RootCause(column, "mix", s.segment, s.mix_value, sentence)
    focused = [
        s
        for s in splits
        if s.top_share >= CONCENTRATED and s.top_weight and s.top_share / s.top_weight >= LIFT
    ]
    if focused:
        s = max(focused, key=lambda s: s.top_share / s.top_weight)
        detail = ""
        if numeric and s.ref_stat is not None and s.cur_stat is not None:
            rel = f" ({(s.cur_stat - s.ref_stat) / s.ref_stat:+.0%})" if s.ref_stat else ""
            detail = (
                f"; there mean {column} went from {_number(s.ref_stat)} "
                f"to {_number(s.cur_stat)}{rel}"
            )
        sentence = (
            f"{change}; concentrated in {s.segment} {s.top_value}: {_percent(s.top_share)} "
            f"of the change comes from rows that are {_percent(s.top_weight)} of the data"
            f"{detail}"
        )
        return RootCause(column, "concentrated", s.segment, s.top_value, sentence)
    where = ", ".join(s.segment for s in splits)
    tail = f"; spread across {where} (no single segment stands out)" if where else ""
    return RootCause(column, "spread", None, None, change + tail)
