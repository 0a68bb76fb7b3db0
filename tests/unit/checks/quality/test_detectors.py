import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from dagster_project.checks.quality.detectors import (
    ECOD,
    IsolationForestDetector,
    RobustZ,
    average_precision,
    best_f1_threshold,
    roc_auc,
    select_detector,
)


def _planted(rng, n=3000, outliers=60, dims=4):
    """Standard normal rows with some rows pushed 6-10 sigma out on one feature."""
    z = rng.normal(size=(n, dims))
    labels = np.zeros(n, dtype=bool)
    rows = rng.choice(n, outliers, replace=False)
    labels[rows] = True
    z[rows, rng.integers(0, dims, outliers)] += rng.choice([-1, 1], outliers) * rng.uniform(
        6, 10, outliers
    )
    return z, labels


@pytest.mark.parametrize(
    ("detector", "min_auc", "min_ap"),
    [
        (RobustZ(), 0.95, 0.7),
        (IsolationForestDetector(seed=1), 0.95, 0.7),
        # tail probabilities saturate at 1/n: a far outlier on one feature does not
        # outrank a row moderately off on several, so ECOD ranks these less sharply
        (ECOD(), 0.85, 0.2),
    ],
)
def test_every_detector_finds_planted_outliers(detector, min_auc, min_ap):
    rng = np.random.default_rng(0)
    train, _ = _planted(rng)
    test, labels = _planted(rng)
    scores = detector.fit(train).score(test)
    assert roc_auc(labels, scores) > min_auc
    assert average_precision(labels, scores) > min_ap


def test_ranking_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(1)
    labels = rng.random(500) < 0.1
    scores = rng.normal(size=500) + labels * 1.5
    scores[:20] = 0.25  # ties
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores), abs=0.02
    )


def test_best_f1_threshold_separates_a_clean_split():
    labels = np.array([False] * 8 + [True] * 2)
    scores = np.array([0.1, 0.2, 0.2, 0.3, 0.1, 0.4, 0.3, 0.2, 5.0, 7.0])
    assert best_f1_threshold(labels, scores) == 5.0


def test_selection_follows_the_data_not_a_favourite():
    """Marginal outliers: robust z wins (cheapest among the best). Broken correlations
    that look normal feature by feature: only IsolationForest sees them."""
    rng = np.random.default_rng(2)
    train, _ = _planted(rng)
    holdout, labels = _planted(rng)
    marginal = select_detector(("robust_z", "isolation_forest", "ecod"), train, holdout, labels)
    assert marginal.chosen.name == "robust_z"
    assert {t.detector for t in marginal.trials} == {"robust_z", "isolation_forest", "ecod"}

    def correlated(n):
        x = rng.normal(size=n)
        return np.column_stack([x, x + rng.normal(scale=0.05, size=n)])

    train = correlated(3000)
    holdout = correlated(2000)
    broken = rng.choice(2000, 60, replace=False)
    holdout[broken, 1] = -holdout[broken, 0]  # each value ordinary, the pair impossible
    labels = np.zeros(2000, dtype=bool)
    labels[broken] = True
    labels &= np.abs(holdout[:, 0]) > 0.5  # pairs near 0 are not broken at all
    chosen = select_detector(("robust_z", "isolation_forest", "ecod"), train, holdout, labels)
    assert chosen.chosen.name == "isolation_forest"
    assert chosen.threshold > 0
