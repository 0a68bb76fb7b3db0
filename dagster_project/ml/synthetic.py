"""Privacy-safe synthetic data: a Gaussian copula over a product's contract columns.

Marginals are the empirical quantile functions of the real columns (numbers, dates and
timestamps), categorical and boolean columns are frequency-encoded (each category owns
an interval of [0, 1] as wide as its share), and dependencies are the correlation of
the normal scores. Sampling draws correlated normals, maps them back through the
marginals, and then respects the contract: types, accepted values, ranges, required
columns. Keys are fresh (unique, never a real key) and personal-data columns are not
modelled at all: they are generated anew (Faker) and never equal a real value. A
synthetic row identical to a real row on the modelled columns is redrawn.

Quality is scored the way SDMetrics' QualityReport does: Column Shapes (KS complement
for numbers and dates, TV complement for categories) and Column Pair Trends
(correlation similarity for number pairs, contingency similarity otherwise), averaged.
Privacy: exact copies of real rows, and the distance to the closest real record.
"""

from __future__ import annotations

import copy
import time
import types
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from dagster_project.checks.pii import classify_column, kind_from_name
from dagster_project.core.contracts import Contract
from dagster_project.lake.storage import enforce_schema

SUFFIX = "_synthetic"
OPT_IN = "synthetic"  # contract customProperty: true builds `<product>_synthetic`
ROWS = "syntheticRows"  # optional customProperty: rows to generate (default: as many)
MAX_CATEGORIES_FOR_PAIRS = 50
BINS = 10  # SDMetrics' ContingencySimilarity discretizes numbers into 10 bins
NUMERIC = ("integer", "number", "date", "timestamp")


def _special() -> types.ModuleType:
    """scipy.special (the normal distribution's functions), imported on first use."""
    from scipy import special

    return special


def _ndtri(p: np.ndarray) -> np.ndarray:
    return _special().ndtri(p)


def _ndtr(z: np.ndarray) -> np.ndarray:
    return _special().ndtr(z)


def _as_float(series: pl.Series) -> np.ndarray:
    """Numbers as float64; dates as days and timestamps as microseconds since 1970."""
    if series.dtype == pl.Date:
        series = series.cast(pl.Int32)
    elif isinstance(series.dtype, pl.Datetime):
        series = series.dt.cast_time_unit("us").cast(pl.Int64)
    return series.cast(pl.Float64).to_numpy()


def _from_float(values: np.ndarray, logical_type: str) -> pl.Series:
    if logical_type == "integer":
        return pl.Series(np.round(values)).cast(pl.Int64)
    if logical_type == "date":
        return pl.Series(np.round(values)).cast(pl.Int32).cast(pl.Date)
    if logical_type == "timestamp":
        return pl.Series(np.round(values)).cast(pl.Int64).cast(pl.Datetime("us"))
    return pl.Series(values, dtype=pl.Float64)


@dataclass
class _Marginal:
    name: str
    logical_type: str
    kind: str  # numeric | categorical
    sorted_values: np.ndarray | None = None
    categories: list[Any] = field(default_factory=list)
    cumulative: np.ndarray | None = None  # interval upper bounds of each category
    null_rate: float = 0.0

    def normal_scores(self, series: pl.Series, rng: np.random.Generator) -> np.ndarray:
        n = series.len()
        if self.kind == "numeric":
            values = _as_float(series)
            filled = np.where(np.isnan(values), np.nanmedian(values), values)
            ranks = pl.Series(filled).rank("average").to_numpy()
            return _ndtri((ranks - 0.5) / n)
        index = {c: i for i, c in enumerate(self.categories)}
        codes = np.array([index[v] for v in series.to_list()])
        lower = np.concatenate([[0.0], self.cumulative[:-1]])[codes]
        upper = self.cumulative[codes]
        u = lower + rng.uniform(0.02, 0.98, n) * (upper - lower)  # inside its interval
        return _ndtri(np.clip(u, 1e-9, 1 - 1e-9))

    def values(self, u: np.ndarray, rng: np.random.Generator) -> pl.Series:
        if self.kind == "numeric":
            quantiles = np.quantile(self.sorted_values, u)
            series = _from_float(quantiles, self.logical_type)
            if self.null_rate:
                mask = rng.uniform(size=len(u)) < self.null_rate
                series = series.scatter(np.flatnonzero(mask), None)
            return series
        codes = np.minimum(
            np.searchsorted(self.cumulative, u, side="right"), len(self.categories) - 1
        )
        return pl.Series([self.categories[c] for c in codes])


def _marginal(name: str, logical_type: str, series: pl.Series) -> _Marginal:
    if logical_type in NUMERIC and series.drop_nulls().len() > 0:
        values = np.sort(_as_float(series.drop_nulls()))
        return _Marginal(
            name,
            logical_type,
            "numeric",
            sorted_values=values,
            null_rate=series.null_count() / series.len(),
        )
    counts = series.value_counts(sort=True, name="n")
    categories = counts[series.name].to_list()
    shares = counts["n"].to_numpy() / series.len()
    return _Marginal(
        name, logical_type, "categorical", categories=categories, cumulative=np.cumsum(shares)
    )


@dataclass
class GaussianCopula:
    """Fit on a product's rows (`fit`), then draw any number of rows (`sample`)."""

    contract: Contract
    seed: int = 0
    marginals: list[_Marginal] = field(default_factory=list)
    correlation: np.ndarray | None = None
    keys: list[str] = field(default_factory=list)
    pii: dict[str, str] = field(default_factory=dict)  # column -> PII kind
    real: pl.DataFrame | None = None

    @property
    def modelled(self) -> list[str]:
        return [m.name for m in self.marginals]

    def fit(self, frame: pl.DataFrame) -> GaussianCopula:
        rng = np.random.default_rng(self.seed)
        self.real = frame
        single_keys = self.contract.primary_key if len(self.contract.primary_key) == 1 else []
        self.keys = [c.name for c in self.contract.columns if c.unique or c.name in single_keys]
        self.pii = {}
        for c in self.contract.columns:
            if c.name in self.keys or c.name not in frame.columns:
                continue
            if c.is_pii:
                finding = classify_column(c.name, frame[c.name])
                self.pii[c.name] = finding.kind if finding else (kind_from_name(c.name) or "text")
        self.marginals = [
            _marginal(c.name, c.logical_type, frame[c.name])
            for c in self.contract.columns
            if c.name in frame.columns and c.name not in self.keys and c.name not in self.pii
        ]
        if not self.marginals or frame.is_empty():
            self.correlation = np.eye(len(self.marginals))
            return self
        scores = np.column_stack([m.normal_scores(frame[m.name], rng) for m in self.marginals])
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(scores, rowvar=False) if scores.shape[1] > 1 else np.eye(1)
        corr = np.nan_to_num(np.atleast_2d(corr))
        np.fill_diagonal(corr, 1.0)
        self.correlation = _nearest_psd(corr)
        return self

    def sample(self, rows: int, seed: int | None = None) -> pl.DataFrame:
        if self.real is None:
            raise ValueError("fit the copula first")
        rng = np.random.default_rng(self.seed + 1 if seed is None else seed)
        columns: dict[str, pl.Series] = {}
        if self.marginals:
            columns.update(self._draw(rows, rng))
            columns = self._redraw_copies(columns, rng)
        for name in self.keys:
            columns[name] = _fresh_keys(
                self.real[name], self.contract.column(name).logical_type, rows
            )
        for name, kind in self.pii.items():
            columns[name] = fresh_pii(kind, self.real[name], rows, rng)
        frame = pl.DataFrame(
            [columns[c.name].alias(c.name) for c in self.contract.columns if c.name in columns]
        )
        frame = _unique_composite_keys(_respect_contract(frame, self.contract), self.contract)
        return enforce_schema(frame, self.contract)

    def _draw(self, rows: int, rng: np.random.Generator) -> dict[str, pl.Series]:
        z = rng.multivariate_normal(np.zeros(len(self.marginals)), self.correlation, size=rows)
        u = np.clip(_ndtr(z), 0.0, 1.0)
        return {m.name: m.values(u[:, i], rng) for i, m in enumerate(self.marginals)}

    def _redraw_copies(
        self, columns: dict[str, pl.Series], rng: np.random.Generator
    ) -> dict[str, pl.Series]:
        """Rows equal to a real row on every modelled column are drawn again."""
        real = self.real.select(self.modelled)
        for _ in range(10):
            frame = pl.DataFrame([columns[c].alias(c) for c in self.modelled])
            copies = _copy_mask(frame, real)
            if not copies.any():
                break
            fresh = self._draw(int(copies.sum()), rng)
            index = np.flatnonzero(copies)
            for name in self.modelled:
                columns[name] = columns[name].scatter(index, fresh[name].cast(columns[name].dtype))
        return columns


def _unique_composite_keys(frame: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """A composite primary key is modelled column by column; rows whose key repeats get a
    fresh value in the key's last column."""
    key = contract.primary_key
    if len(key) < 2 or not all(k in frame.columns for k in key):
        return frame
    repeated = ~frame.select(pl.struct(key).is_first_distinct()).to_series()
    if not repeated.any():
        return frame
    last = key[-1]
    index = np.flatnonzero(repeated.to_numpy())
    if frame[last].dtype.is_integer():
        start = int(frame[last].max() or 0) + 1
        fresh = pl.Series(np.arange(start, start + len(index)), dtype=frame[last].dtype)
    else:
        fresh = pl.Series([f"syn-{i:08d}" for i in range(len(index))]).cast(frame[last].dtype)
    return frame.with_columns(frame[last].scatter(index, fresh))


def _nearest_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    fixed = vectors @ np.diag(np.clip(values, 1e-6, None)) @ vectors.T
    scale = np.sqrt(np.diag(fixed))
    return fixed / np.outer(scale, scale)


def _copy_mask(synthetic: pl.DataFrame, real: pl.DataFrame) -> np.ndarray:
    if real.is_empty() or synthetic.is_empty():
        return np.zeros(synthetic.height, dtype=bool)
    real_hashes = real.cast({c: synthetic.schema[c] for c in real.columns}).hash_rows(seed=7)
    return synthetic.hash_rows(seed=7).is_in(real_hashes.implode()).to_numpy()


def _fresh_keys(real: pl.Series, logical_type: str, rows: int) -> pl.Series:
    """Unique keys no real row has: after the largest real key for numbers and dates,
    a `syn-` prefix for text."""
    if logical_type in ("integer", "number"):
        start = int(real.max() or 0) + 1
        return pl.Series(np.arange(start, start + rows))
    if logical_type == "date":
        start = (real.max() or date(2000, 1, 1)) + timedelta(days=1)
        return pl.Series([start + timedelta(days=i) for i in range(rows)])
    return pl.Series([f"syn-{i:08d}" for i in range(rows)])


def fresh_pii(kind: str, real: pl.Series, rows: int, rng: np.random.Generator) -> pl.Series:
    """New personal data of the same kind, never equal to a real value."""
    from faker import Faker

    fake = Faker("en_GB")
    fake.seed_instance(int(rng.integers(0, 2**31)))
    if kind == "birth_date" or real.dtype == pl.Date:
        dates = real.drop_nulls()
        low = dates.min() or date(1940, 1, 1)
        high = dates.max() or date(2005, 12, 31)
        days = rng.integers(0, (high - low).days + 1, rows)
        return pl.Series([low + timedelta(days=int(d)) for d in days], dtype=pl.Date)
    makers = {
        "name": fake.name,
        "email": fake.safe_email,
        "phone": fake.phone_number,
        "iban": fake.iban,
        "card": fake.credit_card_number,
        "ip": fake.ipv4,
        "address": fake.street_address,
    }
    make = makers.get(kind, lambda: fake.bothify("syn-????-########"))
    taken = set(real.drop_nulls().cast(pl.String).to_list())
    values = []
    for _ in range(rows):
        value = make()
        while value in taken:
            value = make()
        values.append(value)
    return pl.Series(values)


def _respect_contract(frame: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """Clip to the contract's ranges (a quantile between two real values stays inside)."""
    exprs = []
    for c in contract.columns:
        if (
            c.name not in frame.columns
            or not c.bounds
            or c.logical_type not in ("integer", "number")
        ):
            continue
        expr = pl.col(c.name)
        bounds = c.bounds
        if "minimum" in bounds:
            expr = expr.clip(lower_bound=bounds["minimum"])
        if "maximum" in bounds:
            expr = expr.clip(upper_bound=bounds["maximum"])
        step = 1 if c.logical_type == "integer" else 1e-9
        if "exclusiveMinimum" in bounds:
            expr = expr.clip(lower_bound=bounds["exclusiveMinimum"] + step)
        if "exclusiveMaximum" in bounds:
            expr = expr.clip(upper_bound=bounds["exclusiveMaximum"] - step)
        exprs.append(expr.alias(c.name))
    return frame.with_columns(exprs) if exprs else frame


# -- quality and privacy ------------------------------------------------------------------
def _ks_complement(real: np.ndarray, synthetic: np.ndarray) -> float:
    real, synthetic = real[~np.isnan(real)], synthetic[~np.isnan(synthetic)]
    if not len(real) or not len(synthetic):
        return 1.0
    grid = np.union1d(real, synthetic)
    cdf_r = np.searchsorted(np.sort(real), grid, side="right") / len(real)
    cdf_s = np.searchsorted(np.sort(synthetic), grid, side="right") / len(synthetic)
    return float(1 - np.max(np.abs(cdf_r - cdf_s)))


def _frequencies(series: pl.Series) -> dict[Any, float]:
    counts = series.value_counts(name="n")
    total = series.len() or 1
    return {
        k: n / total
        for k, n in zip(counts[series.name].to_list(), counts["n"].to_list(), strict=True)
    }


def _tv_complement(real: pl.Series, synthetic: pl.Series) -> float:
    fr, fs = _frequencies(real), _frequencies(synthetic)
    return float(1 - 0.5 * sum(abs(fr.get(k, 0) - fs.get(k, 0)) for k in fr.keys() | fs.keys()))


def _binned(series: pl.Series, real: pl.Series, numeric: bool) -> pl.Series:
    if not numeric:
        return series.cast(pl.String)
    values, low, high = _as_float(series), np.nanmin(_as_float(real)), np.nanmax(_as_float(real))
    width = (high - low) / BINS or 1.0
    return pl.Series(np.clip(((values - low) // width), 0, BINS - 1)).cast(pl.String)


def quality_report(
    real: pl.DataFrame, synthetic: pl.DataFrame, contract: Contract, columns: list[str]
) -> dict[str, Any]:
    """SDMetrics-style scores over `columns` (the modelled ones: not keys, not PII)."""
    numeric = {c: contract.column(c).logical_type in NUMERIC for c in columns}
    shapes = {}
    for c in columns:
        if numeric[c]:
            shapes[c] = _ks_complement(_as_float(real[c]), _as_float(synthetic[c]))
        else:
            shapes[c] = _tv_complement(real[c], synthetic[c])
    pairs = {}
    for i, a in enumerate(columns):
        for b in columns[i + 1 :]:
            if numeric[a] and numeric[b]:
                r = _pearson(_as_float(real[a]), _as_float(real[b]))
                s = _pearson(_as_float(synthetic[a]), _as_float(synthetic[b]))
                pairs[f"{a}~{b}"] = 1 - abs(r - s) / 2
            else:
                if any(
                    not numeric[c] and real[c].n_unique() > MAX_CATEGORIES_FOR_PAIRS for c in (a, b)
                ):
                    continue
                pairs[f"{a}~{b}"] = _tv_complement(
                    _joint(real, real, a, b, numeric), _joint(synthetic, real, a, b, numeric)
                )
    shape_score = float(np.mean(list(shapes.values()))) if shapes else 1.0
    pair_score = float(np.mean(list(pairs.values()))) if pairs else shape_score
    return {
        "quality": (shape_score + pair_score) / 2,
        "column_shapes": shape_score,
        "column_pair_trends": pair_score,
        "shapes": shapes,
        "pairs": pairs,
    }


def _joint(frame: pl.DataFrame, real: pl.DataFrame, a: str, b: str, numeric: dict) -> pl.Series:
    """The pair's values in `real`'s bins, as one text per row (`a|b`)."""
    bins = [_binned(frame[c], real[c], numeric[c]).alias(n) for n, c in (("a", a), ("b", b))]
    return pl.DataFrame(bins).select(pl.concat_str("a", "b", separator="|").alias("k"))["k"]


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 2 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return 0.0
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def _gower_matrix(
    real: pl.DataFrame, columns: list[str], contract: Contract
) -> tuple[list[np.ndarray], list[bool], list[float]]:
    values, numeric, ranges = [], [], []
    for c in columns:
        is_num = contract.column(c).logical_type in NUMERIC
        numeric.append(is_num)
        if is_num:
            v = _as_float(real[c])
            values.append(v)
            ranges.append(float(np.nanmax(v) - np.nanmin(v)) or 1.0)
        else:
            values.append(real[c].cast(pl.String).fill_null("\0").to_numpy())
            ranges.append(1.0)
    return values, numeric, ranges


def distance_to_closest_record(
    real: pl.DataFrame,
    synthetic: pl.DataFrame,
    contract: Contract,
    columns: list[str],
    *,
    sample: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Gower distance (0 = identical) from each sampled synthetic row to its closest real row."""
    if not columns or real.is_empty() or synthetic.is_empty():
        return np.array([1.0])
    if synthetic.height > sample:
        synthetic = synthetic.sample(sample, seed=seed)
    if real.height > 5 * sample:
        real = real.sample(5 * sample, seed=seed)
    rv, numeric, ranges = _gower_matrix(real, columns, contract)
    sv, _, _ = _gower_matrix(synthetic, columns, contract)
    total = np.zeros((synthetic.height, real.height))
    for r, s, is_num, width in zip(rv, sv, numeric, ranges, strict=True):
        if is_num:
            d = np.abs(s[:, None] - r[None, :]) / width
            total += np.nan_to_num(d, nan=1.0)
        else:  # the same equality on integer codes: object comparisons cost ~50x more
            _, codes = np.unique(np.concatenate([s, r]), return_inverse=True)
            total += codes[: len(s), None] != codes[None, len(s) :]
    return (total / len(columns)).min(axis=1)


def exact_copies(real: pl.DataFrame, synthetic: pl.DataFrame) -> int:
    """Synthetic rows identical to a real row on every column."""
    columns = [c for c in synthetic.columns if c in real.columns]
    return int(_copy_mask(synthetic.select(columns), real.select(columns)).sum())


@dataclass(frozen=True)
class SynthesisResult:
    frame: pl.DataFrame
    metrics: dict[str, Any]


def synthesize(
    contract: Contract, real: pl.DataFrame, rows: int | None = None, seed: int = 0
) -> SynthesisResult:
    """Fit, sample and score: the synthetic rows and their quality and privacy metrics."""
    started = time.perf_counter()
    model = GaussianCopula(contract, seed=seed).fit(real)
    frame = model.sample(rows if rows is not None else real.height)
    seconds = time.perf_counter() - started
    quality = quality_report(real, frame, contract, model.modelled)
    dcr = distance_to_closest_record(real, frame, contract, model.modelled, seed=seed)
    # Reference: how close real rows are to *other* real rows (one half to the other).
    shuffled = real.sample(fraction=1.0, shuffle=True, seed=seed + 1)
    half = shuffled.height // 2
    baseline = (
        distance_to_closest_record(shuffled[half:], shuffled[:half], contract, model.modelled)
        if half
        else dcr
    )
    metrics = {
        "quality": round(quality["quality"], 4),
        "column_shapes": round(quality["column_shapes"], 4),
        "column_pair_trends": round(quality["column_pair_trends"], 4),
        "exact_copies": exact_copies(real, frame),
        "modelled_copies": int(
            _copy_mask(frame.select(model.modelled), real.select(model.modelled)).sum()
        )
        if model.modelled
        else 0,
        "dcr_min": round(float(dcr.min()), 4),
        "dcr_median": round(float(np.median(dcr)), 4),
        "dcr_real_median": round(float(np.median(baseline)), 4),
        "pii_generated": sorted(model.pii),
        "keys_generated": model.keys,
        "modelled_columns": model.modelled,
        "rows": frame.height,
        "seconds": round(seconds, 4),
    }
    return SynthesisResult(frame, metrics)


# -- the synthetic product ------------------------------------------------------------------
def opted_in(contract: Contract) -> bool:
    return str(contract.custom(OPT_IN, "false")).lower() == "true"


def synthetic_contract(source: Contract) -> Contract:
    """The contract of `<product>_synthetic`: the source's schema, fresh keys (so no
    relationships), overwritten on each build; PII columns stay classified."""
    document = copy.deepcopy(source.document)
    name = f"{source.product}{SUFFIX}"
    document["id"] = f"{document['id']}:synthetic"
    document["name"] = f"{document.get('name') or source.product} (synthetic)"
    schema = document["schema"][0]
    schema["name"] = name
    schema["description"] = f"Synthetic rows shaped like {source.key}; no real row or person."
    for prop in schema.get("properties") or []:
        prop.pop("relationships", None)
        prop.pop("partitioned", None)
        prop.pop("partitionKeyPosition", None)
        # Fresh keys reference no one: segments looked up through them would be empty.
        custom = [c for c in prop.get("customProperties") or [] if c.get("property") != "fairness"]
        prop["customProperties"] = custom or None
        if not custom:
            prop.pop("customProperties")
    keep = [
        p
        for p in document.get("customProperties") or []
        # Synthetic rows are not watched for anomalies or drift: they are made to look normal.
        if p["property"] not in {OPT_IN, ROWS, "writeMode", "landing", "anomalyDetection", "drift"}
    ]
    document["customProperties"] = [
        *keep,
        {"property": "writeMode", "value": "overwrite"},
        {"property": "syntheticOf", "value": source.key},
    ]
    return Contract(document, f"<synthetic copy of {source.key}>")
