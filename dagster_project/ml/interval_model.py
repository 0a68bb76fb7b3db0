"""A fitted regressor with prediction intervals, packaged as an MLflow pyfunc model.

Intervals come from quantiles of out-of-sample residuals (a backtest), binned by the
predicted value, so a count model gets narrow bounds where it predicts little and wide
ones where it predicts a lot, calibrated on data the model did not train on.

The class is pickled by value when the model is logged (see `dagster_project.ml.tracking`): a
model loads with mlflow, numpy, pandas and scikit-learn alone, without this project.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits


class IntervalModel(mlflow.pyfunc.PythonModel):
    """`predict` takes a frame holding `features` and returns `prediction`, `lower` and
    `upper` per row (never below `floor`)."""

    def __init__(
        self,
        estimator: Any,
        features: list[str],
        edges: list[float],
        lower: list[float],
        upper: list[float],
        *,
        coverage: float,
        exposure: str | None = None,
        floor: float | None = 0.0,
        threads: int = 1,
    ):
        self.estimator = estimator
        self.exposure = exposure  # a column the estimate is per unit of (Poisson offset)
        self.features = list(features)
        self.edges = list(edges)  # inner edges of the prediction bins
        self.lower = list(lower)  # residual quantile per bin
        self.upper = list(upper)
        self.coverage = coverage
        self.floor = floor
        self.threads = threads

    @classmethod
    def calibrate(
        cls,
        estimator: Any,
        features: list[str],
        frame: pd.DataFrame,
        actual: np.ndarray,
        *,
        coverage: float = 0.8,
        bins: int = 10,
        exposure: str | None = None,
        floor: float | None = 0.0,
        threads: int = 1,
    ) -> IntervalModel:
        """Bounds from the residuals of `estimator` on `frame` (held-out rows)."""
        model = cls(
            estimator,
            features,
            [],
            [0.0],
            [0.0],
            coverage=coverage,
            exposure=exposure,
            floor=floor,
            threads=threads,
        )
        predicted = model.point(frame)
        residual = np.asarray(actual, dtype=float) - predicted
        edges = np.unique(np.quantile(predicted, np.linspace(0, 1, bins + 1)[1:-1]))
        which = np.searchsorted(edges, predicted, side="right")
        tail = (1 - coverage) / 2
        lower, upper = [], []
        for b in range(len(edges) + 1):
            chosen = residual[which == b]
            if chosen.size == 0:  # an empty bin borrows every residual
                chosen = residual
            lower.append(float(np.quantile(chosen, tail)))
            upper.append(float(np.quantile(chosen, 1 - tail)))
        model.edges, model.lower, model.upper = edges.tolist(), lower, upper
        return model

    def point(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame[self.features].astype(float).to_numpy()
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            predicted = self.estimator.predict(values)
        if self.exposure is not None:
            predicted = predicted * frame[self.exposure].astype(float).to_numpy()
        return predicted if self.floor is None else np.maximum(predicted, self.floor)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return self.bounds(model_input)

    def bounds(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`prediction`, `lower` and `upper` per row of `frame`."""
        predicted = self.point(frame)
        which = np.searchsorted(np.asarray(self.edges, dtype=float), predicted, side="right")
        lower = predicted + np.asarray(self.lower)[which]
        upper = predicted + np.asarray(self.upper)[which]
        if self.floor is not None:
            lower = np.maximum(lower, self.floor)
        return pd.DataFrame(
            {
                "prediction": predicted,
                "lower": np.minimum(lower, predicted),
                "upper": np.maximum(upper, predicted),
            }
        )
