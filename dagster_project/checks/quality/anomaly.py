"""Anomaly detection for a product's new rows: fit on history, choose, score, explain.

The detector is fitted on a bounded sample of the product's own recent history (the new
rows themselves when there is none yet), chosen among several without labels (see
`quality.detectors`), and persisted under `MESH_HOME/registry/quality/<domain>/<product>/`;
it is refitted when the contract or its options change or history has moved on by
`refitDays`. Scoring new rows is a few joins and array operations. Flagged rows get a
plain-language reason and land in the `<product>_anomalies` product for triage.

Calibration, per product, from its own data (see `Calibration`):
- the row threshold is never below what the product's normal rows reach: the fence
  q95 + 1.5 (q95 − median) of the scores of held-out, uncorrupted reference rows (robust to a
  few percent of true anomalies among them), above the best-F1 cut on corrupted rows;
- the tolerated share of flagged rows is the usual share of the product's earlier
  partitions (their median, plus three binomial standard errors for a batch this size),
  never below the contract's `maxAnomalyRate` floor; without `calibrationPartitions`
  earlier partitions, the floor;
- with fewer than `minRows` rows to learn from, or no new rows, nothing is judged.
"""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from dagster_project.checks.quality.companion_contracts import triage_columns
from dagster_project.checks.quality.config import AnomalyConfig
from dagster_project.checks.quality.detectors import Detector, RobustZ, Selection, select_detector
from dagster_project.checks.quality.features import CLIP, FeatureProfile, row_labels
from dagster_project.checks.quality.sampling import in_row_order
from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.storage import DateWindow, Lake, day_of

SEED = 20240101
CORRUPTED_SHARE = 0.05
SCORE_BLOCK_ROWS = 1_000_000  # rows transformed and scored at a time
MAX_EXPLAINED = 50_000  # reasons for more flagged rows than this would cost seconds
MIN_HOLDOUT_ROWS = 100
FALLBACK_THRESHOLD = 10.0  # robust z length when there is too little history to calibrate
FENCE_QUANTILE = 0.95  # normal rows' scores: the fence is q95 + 1.5 (q95 - median)...
FENCE_REACH = 1.5  # ...above what 5% of them reach, robust to a few percent of anomalies
PROBE_ROWS = 1_000  # normal rows given one extreme value: the fence stays below half...
PROBE_QUANTILE = 0.5  # ...of their scores or more
MIN_PARTITION_ROWS = 30  # an earlier partition with fewer sampled rows says too little
STANDARD_ERRORS = 3.0  # a batch's share may exceed the usual share by this much noise
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Calibration:
    """How the thresholds were set from the product's own data, in numbers and words."""

    floor: float  # the contract's maxAnomalyRate: never tolerated less
    fence: float  # score the held-out normal rows' tail reaches (0: not calibrated)
    partitions: int = 0  # earlier partitions the usual share was learnt from
    usual_rate: float | None = None  # median share flagged in them
    needed: int = 0  # earlier partitions needed to learn it (calibrationPartitions)

    def tolerated(self, rows: int) -> float:
        """The share of `rows` new rows that may be flagged before the check warns."""
        if self.usual_rate is None or not rows:
            return self.floor
        p = self.usual_rate
        return max(self.floor, p + STANDARD_ERRORS * (p * (1 - p) / rows) ** 0.5)

    @property
    def how(self) -> str:
        fence = (
            f"row threshold at least {self.fence:.3g}, the fence of held-out reference "
            f"rows' scores (q95 + {FENCE_REACH:g} × (q95 - median))"
            if self.fence
            else "row threshold fixed (too few rows to calibrate)"
        )
        if self.usual_rate is None:
            share = (
                f"tolerated share: the floor maxAnomalyRate {self.floor:.2%} "
                f"({self.partitions} earlier partitions to learn the usual share from; "
                f"calibrationPartitions asks for {self.needed})"
            )
        else:
            share = (
                f"tolerated share: the usual share flagged in {self.partitions} earlier "
                f"partitions ({self.usual_rate:.2%}, median) plus {STANDARD_ERRORS:g} "
                f"standard errors for the batch's size, at least {self.floor:.2%}"
            )
        return f"{fence}; {share}"

    def as_dict(self) -> dict:
        return {**asdict(self), "how": self.how}


@dataclass
class AnomalyDetector:
    """A fitted profile, the chosen detector, its threshold and how it was chosen."""

    profile: FeatureProfile
    detector: Detector
    threshold: float
    trials: list[dict]
    criterion: str
    contract_version: str
    options: dict
    fitted_at: str
    training_rows: int
    history: str  # what it was fitted on, in words
    history_end: date | None
    calibration: Calibration
    format_version: int = FORMAT_VERSION

    def score(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(score / threshold per row, z-score matrix): 1 or more is an anomaly. Rows are
        scored SCORE_BLOCK_ROWS at a time (each row's z-scores depend on that row only), so
        the intermediate frames stay small: at 10M rows the whole-frame transform held the
        z-scores twice, 1.3 GB each."""
        blocks = range(0, frame.height, SCORE_BLOCK_ROWS)
        if len(blocks) <= 1:
            z = self.profile.transform(frame)
            return self.detector.score(z) / self.threshold, z
        z = np.empty((frame.height, len(self.profile.feature_names)), order="F")  # as polars
        scores = np.empty(frame.height)
        for start in blocks:
            rows = slice(start, start + SCORE_BLOCK_ROWS)
            z[rows] = self.profile.transform(frame.slice(start, SCORE_BLOCK_ROWS))
            scores[rows] = self.detector.score(z[rows])
        return scores / self.threshold, z

    def summary(self) -> dict:
        return {
            "detector": self.detector.name,
            "threshold": round(self.threshold, 4),
            "criterion": self.criterion,
            "trials": self.trials,
            "fitted_at": self.fitted_at,
            "fitted_on": self.history,
            "training_rows": self.training_rows,
            "calibration": self.calibration.as_dict(),
        }


@dataclass
class AnomalyOutcome:
    """Result of scoring one batch of new rows (`skipped`: why nothing was judged)."""

    rows_scored: int
    flagged: pl.DataFrame  # the rows for `<product>_anomalies`
    detector: AnomalyDetector | None
    max_rate: float
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def count(self) -> int:
        return self.flagged.height

    @property
    def rate(self) -> float:
        return self.count / self.rows_scored if self.rows_scored else 0.0

    @property
    def calibration(self) -> Calibration | None:
        return self.detector.calibration if self.detector else None

    @property
    def passed(self) -> bool:
        """Judged and within the tolerated share: not judged is never passed."""
        return self.skipped is None and self.rate <= self.max_rate

    def describe(self) -> str:
        if self.skipped:
            return f"not judged: {self.skipped}"
        if not self.count:
            return f"no anomalies in {self.rows_scored:,} new rows"
        top = self.flagged.sort("anomaly_score", descending=True)["reason"][0]
        return (
            f"{self.count:,} anomalous row(s) in {self.rows_scored:,} ({self.rate:.2%}; "
            f"tolerated {self.max_rate:.2%}). Worst: {top}"
        )


# -- storage --------------------------------------------------------------------------


def quality_uri(settings: MeshSettings, contract: Contract, *parts: str) -> str:
    return settings.registry_uri("quality", contract.domain, contract.product, *parts)


def save_detector(settings: MeshSettings, contract: Contract, model: AnomalyDetector) -> None:
    settings.files.write_bytes(quality_uri(settings, contract, "detector.pkl"), pickle.dumps(model))


def load_detector(settings: MeshSettings, contract: Contract) -> AnomalyDetector | None:
    uri = quality_uri(settings, contract, "detector.pkl")
    if not settings.files.exists(uri):
        return None
    try:
        model = pickle.loads(settings.files.read_bytes(uri))
    except Exception:  # an unreadable cache is refitted, never trusted
        return None
    return model if getattr(model, "format_version", None) == FORMAT_VERSION else None


# -- fitting --------------------------------------------------------------------------


def history_sample(
    lake: Lake,
    contract: Contract,
    config: AnomalyConfig,
    columns: list[str],
    window: DateWindow | None,
) -> tuple[pl.DataFrame, str, date | None]:
    """A bounded sample of the rows before `window` (partitioned products, with their
    partition column: the calibration's earlier partitions), with a note."""
    part = contract.partition_column
    if window is None or part is None or not lake.exists(contract.key):
        return pl.DataFrame(), "", None
    start = window.start - timedelta(days=config.historyDays)
    end = window.start - timedelta(days=1)
    scan = lake.scan(contract.key, window=DateWindow(start, end), column=part)
    rows = scan.select(pl.len()).collect().item()
    if rows < config.minRows:
        return pl.DataFrame(), "", None
    keep = list(dict.fromkeys([*columns, part]))
    sample = bounded_sample(scan.select(keep), rows, config.profileRows).collect()
    return sample, f"{sample.height:,} of {rows:,} rows from {start} to {end}", end


def bounded_sample(frame: pl.LazyFrame, rows: int, limit: int) -> pl.LazyFrame:
    """About `limit` rows, chosen and ordered by a seeded hash of their values."""
    return in_row_order(frame, min(1.0, limit / rows) if rows else 1.0)


def fit_detector(
    contract: Contract,
    config: AnomalyConfig,
    training: pl.DataFrame,
    *,
    history: str,
    history_end: date | None,
    partition: str | None = None,
) -> AnomalyDetector:
    """Fit the profile and every detector on history; choose one without labels; calibrate
    its threshold on held-out rows and, given the `partition` column of earlier
    partitions, the tolerated share on their usual share of flagged rows."""
    rng = np.random.default_rng(SEED)
    profile = FeatureProfile.for_contract(contract, config).fit(training)
    order = rng.permutation(training.height)[: config.trainingRows]
    cut = int(len(order) * 0.75)
    fit_rows, holdout = training[order[:cut]], training[order[cut:]]
    fence = 0.0
    if holdout.height < MIN_HOLDOUT_ROWS:  # too little to judge detectors: the simplest one
        selection = Selection(RobustZ(), FALLBACK_THRESHOLD)
    else:
        corrupted, labels = corrupt(holdout, profile, rng)
        z = profile.transform(corrupted)
        selection = select_detector(
            config.detectors, profile.transform(fit_rows), z, labels, seed=SEED
        )
        fence = score_fence(selection.chosen, z, labels)
    threshold = max(selection.threshold, fence, 1e-9)
    calibration = Calibration(config.maxAnomalyRate, fence, needed=config.calibrationPartitions)
    if partition is not None and partition in training.columns:
        sample = training[order]
        flagged = selection.chosen.score(profile.transform(sample)) >= threshold
        days = sample.select(day_of(partition)).to_series()  # a timestamp's: its day
        calibration = usual_share(calibration, days, flagged, config)
    return AnomalyDetector(
        profile=profile,
        detector=selection.chosen,
        threshold=threshold,
        trials=[t.as_dict() for t in selection.trials],
        criterion=selection.criterion,
        contract_version=contract.version,
        options=asdict(config),
        fitted_at=datetime.now(UTC).isoformat(timespec="seconds"),
        training_rows=training.height,
        history=history,
        history_end=history_end,
        calibration=calibration,
    )


def score_fence(detector: Detector, z: np.ndarray, corrupted: np.ndarray) -> float:
    """The score normal rows do not reach: q95 + 1.5 (q95 − median) of the uncorrupted
    rows' scores (for normal data about 1 row in 20,000 beyond it); the quantiles stay
    put with a few percent of true anomalies among those rows. Never above what most
    rows with one extreme value score (detectors whose scores saturate, such as ECOD's
    tail probabilities, could otherwise flag nothing)."""
    normal = z[~corrupted]
    if not len(normal):
        return 0.0
    scores = detector.score(normal)
    median, upper = np.quantile(scores, [0.5, FENCE_QUANTILE])
    probes = normal[:PROBE_ROWS].copy()
    rows = np.arange(len(probes))
    probes[rows, rows % z.shape[1]] = CLIP
    reachable = np.quantile(detector.score(probes), PROBE_QUANTILE)
    return float(min(upper + FENCE_REACH * (upper - median), reachable))


def usual_share(
    calibration: Calibration, partitions: pl.Series, flagged: np.ndarray, config: AnomalyConfig
) -> Calibration:
    """`calibration` with the median share flagged per earlier partition, given enough."""
    shares = (
        pl.DataFrame({"partition": partitions, "flagged": flagged})
        .group_by("partition")
        .agg(rows=pl.len(), share=pl.col("flagged").mean())
        .filter(pl.col("rows") >= MIN_PARTITION_ROWS)
    )
    if shares.height < config.calibrationPartitions:
        return replace(calibration, partitions=shares.height)
    usual = float(shares["share"].median())
    return replace(calibration, partitions=shares.height, usual_rate=usual)


def corrupt(
    frame: pl.DataFrame, profile: FeatureProfile, rng: np.random.Generator
) -> tuple[pl.DataFrame, np.ndarray]:
    """A copy of `frame` with a share of rows corrupted three ways (see `detectors`)."""
    n = frame.height
    labels = np.zeros(n, dtype=bool)
    kinds = ["scale"] + (["formula"] if profile.derivations else [])
    kinds += ["swap"] if len(profile.groups) > 1 else []
    rows = rng.choice(n, max(1, round(CORRUPTED_SHARE * n)), replace=False) if n else []
    labels[rows] = True
    names = {m.name for m in profile.measures} | {d.column for d in profile.derivations}
    # as floats (nulls as NaN): a corrupted value need not fit the column's type
    data = {c: frame[c].cast(pl.Float64).to_numpy().astype(float) for c in names}
    follow = {d.column: np.zeros(n, dtype=bool) for d in profile.derivations}
    for i, row in enumerate(rows):
        kind = kinds[i % len(kinds)]
        if kind == "formula":
            d = profile.derivations[rng.integers(len(profile.derivations))]
            data[d.column][row] *= _factor(rng, 1.5, 4.0)
            continue
        m = profile.measures[rng.integers(len(profile.measures))]
        if kind == "scale":
            data[m.name][row] = _scaled(rng, data[m.name][row], m, profile)
        else:
            group = profile.groups[1 + rng.integers(len(profile.groups) - 1)]
            others = np.flatnonzero(frame[group].to_numpy() != frame[group][int(row)])
            if len(others):
                data[m.name][row] = data[m.name][rng.choice(others)]
        for d in profile.derivations:  # a changed input changes what is derived from it
            follow[d.column][row] |= m.name in d.inputs
    changed = frame.with_columns(
        pl.Series(c, values, dtype=pl.Float64, nan_to_null=True) for c, values in data.items()
    )
    for d in profile.derivations:
        changed = changed.with_columns(
            pl.when(pl.Series(follow[d.column]))
            .then(d.expr)
            .otherwise(pl.col(d.column))
            .alias(d.column)
        )
    return changed, labels


def _factor(rng: np.random.Generator, low: float, high: float) -> float:
    factor = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return factor if rng.random() < 0.5 else 1 / factor


def _scaled(rng: np.random.Generator, value: float, m, profile: FeatureProfile) -> float:
    if np.isnan(value):  # a missing value stays missing
        return value
    if m.log and value > 0:
        scaled = value * _factor(rng, 3.0, 20.0)
        return max(1.0, round(scaled)) if m.integer else scaled
    _, spread = profile.overall[m.name]
    moved = value + (1 if rng.random() < 0.5 else -1) * rng.uniform(3, 10) * max(spread, 1.0)
    return round(moved) if m.integer else moved


def detector_for(
    lake: Lake,
    contract: Contract,
    config: AnomalyConfig,
    new_rows: pl.DataFrame,
    window: DateWindow | None,
) -> tuple[AnomalyDetector | None, bool]:
    """The persisted detector if still valid, else a freshly fitted (and saved) one; None
    when there are fewer than `minRows` rows to learn what is usual from."""
    settings = lake.settings
    current = load_detector(settings, contract)
    if current is not None and _still_valid(current, contract, config, window):
        return current, False
    columns = FeatureProfile.for_contract(contract, config).columns_needed()
    training, history, end = history_sample(lake, contract, config, columns, window)
    partition = contract.partition_column  # earlier partitions calibrate the share
    if training.is_empty():
        sample = bounded_sample(
            new_rows.lazy().select(columns), new_rows.height, config.profileRows
        )
        training = sample.collect()
        history = f"{training.height:,} of the {new_rows.height:,} new rows (no history yet)"
        end = window.end if window else None
        partition = None  # the rows being judged never set their own tolerance
    if training.height < config.minRows:
        return None, False
    model = fit_detector(
        contract, config, training, history=history, history_end=end, partition=partition
    )
    save_detector(settings, contract, model)
    return model, True


def _still_valid(
    model: AnomalyDetector, contract: Contract, config: AnomalyConfig, window: DateWindow | None
) -> bool:
    if model.contract_version != contract.version or model.options != asdict(config):
        return False
    if window is None or model.history_end is None:  # unpartitioned: refit by the calendar
        fitted = datetime.fromisoformat(model.fitted_at).date()
        return (datetime.now(UTC).date() - fitted).days <= config.refitDays
    return (window.start - model.history_end).days <= config.refitDays


# -- scoring --------------------------------------------------------------------------


def score_rows(
    lake: Lake,
    contract: Contract,
    config: AnomalyConfig,
    frame: pl.DataFrame,
    window: DateWindow | None,
) -> AnomalyOutcome:
    """Score `frame` (the new rows) and explain the ones flagged; not judged without new
    rows or with too little data to learn what is usual."""
    started = time.perf_counter()
    if frame.is_empty():
        return _not_judged(contract, config, frame, "no new rows to score")
    model, refitted = detector_for(lake, contract, config, frame, window)
    if model is None:
        rows = max(frame.height, _history_rows(lake, contract, config, window))
        reason = f"{rows:,} rows to learn what is usual from; at least {config.minRows:,} needed"
        return _not_judged(contract, config, frame, reason)
    fitted = time.perf_counter()
    scores, z = model.score(frame)
    scored = time.perf_counter()
    flagged = flagged_rows(contract, model, frame, scores, z)
    seconds = {
        "fit_s": round(fitted - started, 3) if refitted else 0.0,
        "score_s": round(scored - fitted, 3),
        "explain_s": round(time.perf_counter() - scored, 3),
    }
    tolerated = model.calibration.tolerated(frame.height)
    return AnomalyOutcome(frame.height, flagged, model, tolerated, seconds)


def _not_judged(
    contract: Contract, config: AnomalyConfig, frame: pl.DataFrame, reason: str
) -> AnomalyOutcome:
    keep = triage_columns(contract, FeatureProfile.for_contract(contract, config))
    flagged = _with_triage(frame.clear().select(keep), np.zeros(0), "-", [])
    return AnomalyOutcome(0, flagged, None, config.maxAnomalyRate, skipped=reason)


def _history_rows(
    lake: Lake, contract: Contract, config: AnomalyConfig, window: DateWindow | None
) -> int:
    part = contract.partition_column
    if window is None or part is None or not lake.exists(contract.key):
        return 0
    start = window.start - timedelta(days=config.historyDays)
    history = DateWindow(start, window.start - timedelta(days=1))
    return lake.scan(contract.key, window=history, column=part).select(pl.len()).collect().item()


def flagged_rows(
    contract: Contract,
    model: AnomalyDetector,
    frame: pl.DataFrame,
    scores: np.ndarray,
    z: np.ndarray,
) -> pl.DataFrame:
    """The flagged rows, worst first, with score, reason, status and detection time."""
    hits = np.flatnonzero(scores >= 1.0)
    hits = hits[np.argsort(-scores[hits], kind="stable")]
    keep = triage_columns(contract, model.profile)
    rows = frame[hits].select(keep) if len(hits) else frame.clear().select(keep)
    explained = min(len(hits), MAX_EXPLAINED)
    reasons = model.profile.explain(
        frame[hits[:explained]],
        z[hits[:explained]],
        row_labels(frame[hits[:explained]], contract.primary_key),
    )
    reasons += ["beyond the most anomalous rows that are explained"] * (len(hits) - explained)
    return _with_triage(rows, scores[hits], model.detector.name, reasons)


def _with_triage(
    rows: pl.DataFrame, scores: np.ndarray, detector: str, reasons: list[str]
) -> pl.DataFrame:
    return rows.with_columns(
        anomaly_score=pl.Series(np.round(scores, 3), dtype=pl.Float64),
        detector=pl.lit(detector, dtype=pl.String),
        reason=pl.Series(reasons, dtype=pl.String),
        status=pl.lit("open", dtype=pl.String),
        detected_at=pl.lit(datetime.now(UTC).replace(tzinfo=None)).cast(pl.Datetime("us")),
    )


# -- hand-over to the anomalies product -----------------------------------------------


def _staged_uri(settings: MeshSettings, contract: Contract, window: DateWindow | None) -> str:
    name = f"{window.start}_{window.end}" if window else "all"
    return quality_uri(settings, contract, "flagged", f"{name}.parquet")


def stage_flagged(
    settings: MeshSettings,
    contract: Contract,
    window: DateWindow | None,
    outcome: AnomalyOutcome,
    version: int,
) -> None:
    """Keep the flagged rows for the `_anomalies` product (valid for this table version)."""
    uri = _staged_uri(settings, contract, window)
    settings.files.write_parquet(uri, outcome.flagged)
    settings.files.write_text(uri + ".json", json.dumps({"table_version": version}))


def staged_flagged(
    settings: MeshSettings, contract: Contract, window: DateWindow | None, version: int
) -> pl.DataFrame | None:
    """The rows staged by the parent's check, if they were scored on this table version."""
    uri = _staged_uri(settings, contract, window)
    if not settings.files.exists(uri + ".json"):
        return None
    if json.loads(settings.files.read_text(uri + ".json")).get("table_version") != version:
        return None
    return settings.files.read_parquet(uri)
