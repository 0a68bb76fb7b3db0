"""Model-based imputation of the columns a contract marks `imputable`.

Missing values of an imputable column are predicted by gradient boosting
(scikit-learn's HistGradientBoosting) trained on the rows where the column is present,
and flagged in its `<column>_imputed` column. Features are the product's other columns:
numbers as they are, low-cardinality attributes as categories, and ids that reference
another product (store_id, product_id…) as a smoothed mean of the target per id (target
encoding: "what this product's price usually is"). Keys and personal data are never
imputed (the contract is rejected) and never used as features.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from dagster_project.checks.quality.config import flag_column
from dagster_project.core.contracts import Column, Contract

MAX_TRAINING_ROWS = 50_000
MAX_CATEGORIES = 64
SMOOTHING = 5.0  # pseudo-rows of the overall mean in each id's mean
SEED = 7


@dataclass(frozen=True)
class Imputation:
    """What was filled in one column, and how."""

    column: str
    filled: int
    model: str
    features: tuple[str, ...]
    training_rows: int
    seconds: float

    def as_dict(self) -> dict:
        return {
            "column": self.column,
            "filled": self.filled,
            "model": self.model,
            "features": list(self.features),
            "training_rows": self.training_rows,
            "seconds": round(self.seconds, 3),
        }


def _feature_columns(contract: Contract, target: str, frame: pl.DataFrame) -> list[Column]:
    usable = []
    for c in contract.columns:
        if c.name == target or c.name not in frame.columns or c.name.endswith("_imputed"):
            continue
        if c.primary_key or c.is_pii or c.logical_type in {"date", "timestamp"}:
            continue
        usable.append(c)
    return usable


def _is_identifier(column: Column) -> bool:
    return bool(column.references) or column.name.endswith("_id")


def _design(
    frame: pl.DataFrame, train: pl.DataFrame, target: str, columns: list[Column], numeric: bool
) -> tuple[np.ndarray, np.ndarray, list[str], list[bool]]:
    """Feature matrices for `train` and `frame`, their names and which are categorical."""
    train_parts, all_parts, names, categorical = [], [], [], []
    for c in columns:
        if _is_identifier(c):
            if not numeric:
                continue
            encoded_train, encoded_all = _target_encode(train, frame, c.name, target)
            train_parts.append(encoded_train)
            all_parts.append(encoded_all)
            names.append(f"{c.name} (mean {target})")
            categorical.append(False)
        elif c.logical_type in {"integer", "number"}:
            train_parts.append(train[c.name].cast(pl.Float64).to_numpy())
            all_parts.append(frame[c.name].cast(pl.Float64).to_numpy())
            names.append(c.name)
            categorical.append(False)
        else:
            levels = train[c.name].drop_nulls().cast(pl.String).unique().sort()
            if levels.len() > MAX_CATEGORIES:
                continue
            train_parts.append(_codes(train[c.name], levels))
            all_parts.append(_codes(frame[c.name], levels))
            names.append(c.name)
            categorical.append(True)
    return np.column_stack(train_parts), np.column_stack(all_parts), names, categorical


def _codes(values: pl.Series, levels: pl.Series) -> np.ndarray:
    mapping = {v: float(i) for i, v in enumerate(levels.to_list())}
    return (
        values.cast(pl.String)
        .replace_strict(mapping, default=None, return_dtype=pl.Float64)
        .to_numpy()
    )


def _target_encode(
    train: pl.DataFrame, frame: pl.DataFrame, column: str, target: str
) -> tuple[np.ndarray, np.ndarray]:
    overall = train[target].cast(pl.Float64).mean()
    means = train.group_by(column).agg(
        encoded=(pl.col(target).cast(pl.Float64).sum() + SMOOTHING * overall)
        / (pl.len() + SMOOTHING)
    )

    def encode(rows: pl.DataFrame) -> np.ndarray:
        joined = rows.select(column).join(means, on=column, how="left", maintain_order="left")
        return joined["encoded"].fill_null(overall).to_numpy()

    return encode(train), encode(frame)


def impute_column(
    contract: Contract, frame: pl.DataFrame, target: str
) -> tuple[pl.DataFrame, Imputation]:
    """Fill `target`'s missing values in `frame`; the flag column says which were filled."""
    started = time.perf_counter()
    missing = frame[target].is_null()
    flag = flag_column(target)
    # An expression over the frame's columns keeps their chunks: a column built apart
    # (one chunk) would make every later Arrow export copy the whole frame to align them.
    previous = pl.col(flag).fill_null(False) if flag in frame.columns else pl.lit(False)
    flagged = (previous | pl.col(target).is_null()).alias(flag)
    n_missing = int(missing.sum())
    if n_missing in (0, frame.height):  # nothing to fill, or nothing to learn from
        seconds = time.perf_counter() - started
        return frame.with_columns(flagged), Imputation(target, 0, "none", (), 0, seconds)
    complete = frame.filter(~missing)  # a copy: only made when there are gaps to fill
    column = contract.column(target)
    numeric = column.logical_type in {"integer", "number"}
    train = complete.sample(min(complete.height, MAX_TRAINING_ROWS), seed=SEED)
    x_train, x_missing, names, categorical = _design(
        frame.filter(missing), train, target, _feature_columns(contract, target, frame), numeric
    )
    gaps = missing.to_numpy()
    predicted, model_name = _fit_predict(train[target], x_train, x_missing, categorical, numeric)
    filled = _as_column(predicted, column, frame.schema[target])
    values = frame[target].scatter(np.flatnonzero(gaps), filled)
    result = frame.with_columns(flagged).with_columns(values.alias(target))
    seconds = time.perf_counter() - started
    return result, Imputation(target, n_missing, model_name, tuple(names), train.height, seconds)


def _fit_predict(
    y: pl.Series, x_train: np.ndarray, x_missing: np.ndarray, categorical: list[bool], numeric: bool
) -> tuple[np.ndarray, str]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    options = dict(
        max_iter=150,
        learning_rate=0.1,
        categorical_features=np.array(categorical, dtype=bool) if any(categorical) else None,
        early_stopping=False,
        random_state=SEED,
    )
    # One OpenMP thread: on a busy machine (other runs, other ops) spinning threads cost
    # ten times what they save; one thread fits 50k rows in about half a second.
    with threadpool_limits(limits=1):
        if numeric:
            target = y.cast(pl.Float64).to_numpy()
            model = HistGradientBoostingRegressor(**options).fit(x_train, target)
        else:
            target = y.cast(pl.String).to_numpy()
            model = HistGradientBoostingClassifier(**options).fit(x_train, target)
        return model.predict(x_missing), type(model).__name__


def _as_column(predicted: np.ndarray, column: Column, dtype: pl.DataType) -> pl.Series:
    """Predictions rounded for integers and kept within the contract's bounds."""
    if column.logical_type not in {"integer", "number"}:
        return pl.Series(predicted.astype(str), dtype=dtype)
    bounds = column.bounds
    low = bounds.get("minimum", bounds.get("exclusiveMinimum"))
    high = bounds.get("maximum", bounds.get("exclusiveMaximum"))
    values = np.clip(predicted, low, high) if low is not None or high is not None else predicted
    if "exclusiveMinimum" in bounds:
        values = np.maximum(values, np.nextafter(float(bounds["exclusiveMinimum"]), np.inf))
    if column.logical_type == "integer":
        values = np.round(values)
    return pl.Series(values).cast(dtype)


def impute(
    contract: Contract, frame: pl.DataFrame, columns: tuple[str, ...]
) -> tuple[pl.DataFrame, list[Imputation]]:
    """Impute every imputable column of `frame` in turn."""
    done = []
    for column in columns:
        if column in frame.columns:
            frame, result = impute_column(contract, frame, column)
            done.append(result)
    return frame, done
