import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from dagster_project.ml.interval_model import IntervalModel


def _noisy_line(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n)
    y = 2 * x + rng.normal(0, 1 + x / 2, n)  # the spread grows with the level
    return pd.DataFrame({"x": x}), y


def test_bounds_cover_the_asked_share_of_new_data_and_widen_with_the_level() -> None:
    train, y_train = _noisy_line(4000, 1)
    held, y_held = _noisy_line(4000, 2)
    fresh, y_fresh = _noisy_line(4000, 3)
    estimator = LinearRegression().fit(train.to_numpy(), y_train)
    model = IntervalModel.calibrate(estimator, ["x"], held, y_held, coverage=0.8, floor=None)
    bounds = model.predict(None, fresh)
    inside = (y_fresh >= bounds["lower"]) & (y_fresh <= bounds["upper"])
    assert inside.mean() == pytest.approx(0.8, abs=0.03)
    width = bounds["upper"] - bounds["lower"]
    assert width[fresh["x"] > 8].mean() > 2 * width[fresh["x"] < 2].mean()
    assert (bounds["lower"] <= bounds["prediction"]).all()
    assert (bounds["prediction"] <= bounds["upper"]).all()


def test_an_exposure_scales_the_estimate_and_the_floor_holds() -> None:
    frame = pd.DataFrame({"x": [1.0, 1.0, 1.0], "level": [0.5, 2.0, 4.0]})
    estimator = LinearRegression().fit([[0.0], [2.0]], [-3.0, 5.0])  # 4x - 3
    model = IntervalModel.calibrate(
        estimator, ["x"], frame, np.array([0.0, 2.0, 4.0]), exposure="level", floor=0.0
    )
    bounds = model.bounds(frame)
    assert bounds["prediction"].tolist() == pytest.approx([0.5, 2.0, 4.0])
    low = IntervalModel(estimator, ["x"], [], [-10.0], [1.0], coverage=0.8, floor=0.0)
    assert (low.bounds(pd.DataFrame({"x": [0.0, 0.5]}))["lower"] == 0.0).all()
