import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.linear_model import LinearRegression

from dagster_project.checks.fairness import Disparity, FairnessThresholds, error_disparity
from dagster_project.core.settings import MeshSettings
from dagster_project.ml import interval_model
from dagster_project.ml.interval_model import IntervalModel
from dagster_project.ml.tracking import (
    CHAMPION,
    FairnessGate,
    MLflowResource,
    champion_challenger,
    decide,
    default_tracking_uri,
    pinned,
)

NAME = "test.model"
X = pd.DataFrame({"x": np.arange(20, dtype=float)})
Y = 3 * X["x"].to_numpy() + 1


def test_tracking_defaults_to_sqlite_under_the_home_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = MeshSettings(home=str(tmp_path))
    assert default_tracking_uri(settings) == f"sqlite:///{tmp_path}/mlflow.db"
    resource = MLflowResource(home=str(tmp_path))
    assert resource.resolved_artifact_root == f"{tmp_path}/mlartifacts"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert (
        MLflowResource(home=str(tmp_path)).resolved_tracking_uri == "http://tracking.example:5000"
    )
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI"):
        default_tracking_uri(MeshSettings(home="s3://bucket/mesh"))


def test_the_fluent_api_is_put_back_after_use(mlflow_home: MeshSettings) -> None:
    import mlflow

    before = mlflow.get_tracking_uri()
    resource = MLflowResource()
    with resource.active() as active:
        assert active.get_tracking_uri() == resource.resolved_tracking_uri
    assert mlflow.get_tracking_uri() == before
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_decide_needs_a_strictly_better_score() -> None:
    assert decide(0.5, None, metric="wape")[0]
    assert decide(0.49, 0.5, metric="wape") == (True, "wape 0.4900 beats the champion's 0.5000")
    assert not decide(0.5, 0.5, metric="wape")[0]
    assert not decide(0.49, 0.5, metric="wape", min_improvement=0.05)[0]


def _model(slope: float) -> IntervalModel:
    estimator = LinearRegression().fit([[0.0], [1.0]], [1.0, 1.0 + slope])
    return IntervalModel.calibrate(estimator, ["x"], X, Y, floor=None)


def _register(resource: MLflowResource, model: IntervalModel, example: pd.DataFrame = X) -> str:
    with resource.start_run("tests") as run:
        logged = resource.log_pyfunc(
            model,
            "model",
            pip_requirements=pinned("mlflow", "scikit-learn"),
            example=example.head(3),
            by_value=[interval_model],
        )
    return resource.register(NAME, logged.model_uri, run.info.run_id, {}).version


def _error(model) -> float:
    return float(np.abs(model.predict(X)["prediction"].to_numpy() - Y).mean())


def test_the_champion_alias_moves_only_to_a_better_model(mlflow_home: MeshSettings) -> None:
    resource = MLflowResource()
    decisions = []
    for slope in (2.0, 2.0, 3.0):  # a first model, an equal one, a better one
        model = _model(slope)
        version = _register(resource, model)
        score = _error(resource.load_version(NAME, version))
        decisions.append(champion_challenger(resource, NAME, version, score, _error, metric="mae"))
    first, equal, better = decisions
    assert (first.promoted, first.champion_version) == (True, None)
    assert (equal.promoted, equal.champion_version, equal.champion_after) == (False, "1", "1")
    assert (better.promoted, better.champion_version, better.champion_after) == (True, "1", "3")
    assert better.champion_score == pytest.approx(equal.challenger_score)
    assert better.challenger_score == pytest.approx(0.0, abs=1e-9)

    assert str(resource.version_by_alias(NAME, CHAMPION).version) == "3"
    assert _error(resource.load(NAME)) == pytest.approx(0.0, abs=1e-9)
    client = resource.client()
    rejected = client.get_model_version(NAME, "2").tags
    assert rejected["champion_decision"] == "rejected"
    assert rejected["champion_reason"].startswith("mae ")
    run_id = client.get_model_version(NAME, "3").run_id
    record = json.loads(
        Path(client.download_artifacts(run_id, "champion_decision.json")).read_text()
    )
    assert record["champion_after"] == "3" and record["champion_version"] == "1"


def test_a_logged_model_loads_without_this_project(mlflow_home: MeshSettings) -> None:
    resource = MLflowResource()
    version = _register(resource, _model(3.0))
    with resource.active() as mlflow:
        local = mlflow.artifacts.download_artifacts(f"models:/{NAME}/{version}")
    # The interval model was pickled by value: it loads with dagster_project unimportable.
    script = (
        "import sys; sys.modules['dagster_project'] = None; import mlflow.pyfunc, pandas; "
        f"m = mlflow.pyfunc.load_model({local!r}); "
        "print(m.predict(pandas.DataFrame({'x': [2.0]}))['prediction'][0])"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) == pytest.approx(7.0)


# -- fairness at promotion ------------------------------------------------------------

XS = pd.DataFrame({"x": np.arange(1, 81, dtype=float), "b": np.arange(80) % 2 * 1.0})
XS["xb"] = XS["x"] * XS["b"]
YS = 3 * XS["x"].to_numpy() + 1
SEGMENT = np.where(XS["b"] == 1, "B", "A")


def _segment_model(target: np.ndarray) -> IntervalModel:
    estimator = LinearRegression().fit(XS.to_numpy(), target)
    return IntervalModel.calibrate(estimator, ["x", "b", "xb"], XS, YS, floor=None)


def _segment_gap(model) -> Disparity | None:
    predicted = model.predict(XS)["prediction"].to_numpy()
    rows = pl.DataFrame({"segment": SEGMENT, "units": YS, "prediction": predicted})
    th = FairnessThresholds(minRows=10)
    return error_disparity(rows, "segment", "units", "prediction", th, "prediction")


def _segment_error(model) -> float:
    return float(np.abs(model.predict(XS)["prediction"].to_numpy() - YS).mean())


def _challenge(resource: MLflowResource, target: np.ndarray):
    version = _register(resource, _segment_model(target), example=XS)
    model = resource.load_version(NAME, version)
    gate = FairnessGate(_segment_gap(model), _segment_gap)
    return champion_challenger(
        resource, NAME, version, _segment_error(model), _segment_error, metric="mae", fairness=gate
    )


def test_a_challenger_more_accurate_overall_but_worse_for_one_segment_is_refused(
    mlflow_home: MeshSettings,
) -> None:
    resource = MLflowResource()
    fair = _challenge(resource, 0.9 * YS)  # 10% under for everyone
    assert (fair.promoted, fair.fairness) == (True, "passed")
    # Exact for segment A, 15% over for B: better on average, unfair to B.
    biased = _challenge(resource, YS * (1 + 0.15 * XS["b"].to_numpy()))
    assert biased.challenger_score < fair.challenger_score
    assert (biased.promoted, biased.fairness, biased.worst_segment) == (
        False,
        "refused",
        "segment=B",
    )
    assert (
        "widens the worst segment's error gap" in biased.reason and "segment = B" in biased.reason
    )
    assert str(resource.version_by_alias(NAME, CHAMPION).version) == fair.challenger_version
    client = resource.client()
    tags = client.get_model_version(NAME, biased.challenger_version).tags
    assert tags["fairness_gate"] == "refused" and tags["champion_decision"] == "rejected"
    run = client.get_run(client.get_model_version(NAME, biased.challenger_version).run_id)
    assert run.data.metrics["worst_segment_gap"] > 0.25
    assert run.data.tags["fairness_gate"] == "refused"
    better = _challenge(resource, 0.95 * YS)  # more accurate and fair: promoted
    assert (better.promoted, better.fairness) == (True, "passed")
