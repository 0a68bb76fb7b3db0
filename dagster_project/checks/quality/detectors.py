"""Unsupervised detectors over the anomaly features, and how one is chosen without labels.

All three read the same z-score matrix (`FeatureProfile.transform`); higher = stranger.

- `robust_z`: the length of the z-score vector (clipped): many moderate or one extreme
  deviation both count. Nothing to fit beyond the profile; the cheapest to score.
- `isolation_forest`: scikit-learn's IsolationForest (Liu et al. 2008): points that random
  splits isolate quickly are outliers; catches unusual combinations.
- `ecod`: Empirical-Cumulative-distribution Outlier Detection (Li et al. 2022, as in PyOD),
  written out here in numpy: the summed tail probabilities of each feature under its
  empirical distribution; parameter-free.

Choosing (label-free): real anomalies are unlabelled, so each detector is judged on a
holdout of the product's own history in which a share of rows has been corrupted the
ways data goes wrong — a measure multiplied or divided several-fold (global), a derived
column no longer matching its formula (relational), a value taken from another group's
row (contextual). The detector with the best average precision at finding the corrupted
rows wins (ties within 0.01: the cheaper one, in the fixed order of FACTORIES, so the
choice never depends on the machine's load); its alarm threshold is the score that best
separates them (maximum F1). No ground truth is read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from dagster_project.checks.quality.features import CLIP

F1_SLACK = 0.02  # thresholds whose F1 is this close to the best are as good
SCORE_BLOCK = 1 << 16  # rows per block: a few MB, cache-friendly


class Detector(Protocol):
    name: str

    def fit(self, z: np.ndarray) -> Detector: ...

    def score(self, z: np.ndarray) -> np.ndarray: ...


class RobustZ:
    name = "robust_z"

    def fit(self, z: np.ndarray) -> RobustZ:
        return self

    def score(self, z: np.ndarray) -> np.ndarray:
        """Each row's Euclidean norm of its clipped z-scores, a block of rows at a time:
        whole-matrix temporaries (clip, square) of 10M rows took 13x longer."""
        norms = np.empty(len(z))
        for start in range(0, len(z), SCORE_BLOCK):
            block = np.clip(z[start : start + SCORE_BLOCK], -CLIP, CLIP)
            norms[start : start + SCORE_BLOCK] = np.sqrt(np.einsum("ij,ij->i", block, block))
        return norms


class IsolationForestDetector:
    name = "isolation_forest"

    def __init__(self, seed: int = 0, trees: int = 100):
        self.seed, self.trees = seed, trees
        self.model = None

    def fit(self, z: np.ndarray) -> IsolationForestDetector:
        from sklearn.ensemble import IsolationForest  # import cost only where it is used

        self.model = IsolationForest(
            n_estimators=self.trees, max_samples=256, random_state=self.seed
        ).fit(z)
        return self

    def score(self, z: np.ndarray) -> np.ndarray:
        return -self.model.score_samples(z)


class ECOD:
    name = "ecod"

    def fit(self, z: np.ndarray) -> ECOD:
        self.sorted = np.sort(z, axis=0)
        centred = z - z.mean(axis=0)
        spread = np.maximum(centred.std(axis=0), 1e-12)
        self.skew = (centred**3).mean(axis=0) / spread**3
        return self

    def score(self, z: np.ndarray) -> np.ndarray:
        n = self.sorted.shape[0]
        left = np.empty_like(z, dtype=float)
        right = np.empty_like(z, dtype=float)
        for j in range(z.shape[1]):
            column = self.sorted[:, j]
            left[:, j] = np.searchsorted(column, z[:, j], side="right")
            right[:, j] = n - np.searchsorted(column, z[:, j], side="left")
        floor = 1.0 / (n + 1)
        tail_left = -np.log(np.maximum(left / n, floor))
        tail_right = -np.log(np.maximum(right / n, floor))
        tail_skew = np.where(self.skew < 0, tail_left, tail_right)
        # as PyOD: per feature the larger of the skew-side tail and the mean of both tails
        return np.maximum(tail_skew, (tail_left + tail_right) / 2).sum(axis=1)


FACTORIES = {  # cheapest to score first
    "robust_z": RobustZ,
    "isolation_forest": IsolationForestDetector,
    "ecod": ECOD,
}


@dataclass
class Trial:
    """How one detector did on the corrupted holdout."""

    detector: str
    average_precision: float
    roc_auc: float
    threshold: float
    fit_s: float
    score_us_per_row: float

    def as_dict(self) -> dict[str, float | str]:
        return {
            "detector": self.detector,
            "synthetic_average_precision": round(self.average_precision, 4),
            "synthetic_roc_auc": round(self.roc_auc, 4),
            "threshold": round(self.threshold, 4),
            "fit_s": round(self.fit_s, 3),
            "score_us_per_row": round(self.score_us_per_row, 3),
        }


@dataclass
class Selection:
    chosen: Detector
    threshold: float
    trials: list[Trial] = field(default_factory=list)

    @property
    def criterion(self) -> str:
        if not self.trials:
            return "too few rows to compare detectors: robust z with a fixed threshold"
        return (
            "highest average precision at finding synthetically corrupted rows of a "
            "holdout from the product's own history (ties within 0.01: cheaper to score)"
        )


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    hits = labels[order].astype(float)
    if hits.sum() == 0:
        return 0.0
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return 0.5
    ranks = _average_ranks(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return ranks


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score at or above which rows are flagged so that F1 is highest."""
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], labels[order].astype(float)
    true_pos = np.cumsum(hits)
    flagged = np.arange(1, len(hits) + 1)
    f1 = 2 * true_pos / (flagged + hits.sum())
    # only cut between distinct scores
    distinct = np.r_[ranked[1:] != ranked[:-1], True]
    f1 = np.where(distinct, f1, -1)
    # F1 is flat near its peak, and the peak can sit above a few real anomalies among the
    # uncorrupted rows: the lowest cut within F1_SLACK of the best is as good and stable
    return float(ranked[np.flatnonzero(f1 >= f1.max() - F1_SLACK)[-1]])


def select_detector(
    names: tuple[str, ...],
    train: np.ndarray,
    holdout: np.ndarray,
    corrupted: np.ndarray,
    seed: int = 0,
) -> Selection:
    """Fit each detector on `train`, judge it on `holdout` whose rows `corrupted` marks."""
    trials, fitted = [], {}
    for name in names:
        detector = FACTORIES[name](seed=seed) if name == "isolation_forest" else FACTORIES[name]()
        started = time.perf_counter()
        detector.fit(train)
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        scores = detector.score(holdout)
        per_row = (time.perf_counter() - started) / max(len(holdout), 1) * 1e6
        trials.append(
            Trial(
                name,
                average_precision(corrupted, scores),
                roc_auc(corrupted, scores),
                best_f1_threshold(corrupted, scores),
                fit_s,
                per_row,
            )
        )
        fitted[name] = detector
    best = max(t.average_precision for t in trials)
    contenders = [t for t in trials if t.average_precision >= best - 0.01]
    winner = min(contenders, key=lambda t: list(FACTORIES).index(t.detector))
    return Selection(fitted[winner.detector], winner.threshold, trials)
