"""An explainable quality score per product: six dimensions, one number, one paragraph.

| dimension | 1.0 means | measured on |
| --- | --- | --- |
| completeness | no missing values | the rows just written, every contract column |
| validity | every value within its rules (not null, enum, range) | the rows just written |
| uniqueness | no duplicate keys | the table (merge) or the rows just written |
| freshness | the newest event within the SLA (0 at twice it) | the event-time column |
| anomalies | no anomalous rows (0 at 5% of rows) | the new rows, where monitored |
| drift | no drifted column | the newest partition, where monitored |

The score is the weighted mean of the dimensions that apply, × 100. It is kept under
`MESH_HOME/registry/quality/<domain>/<product>/score.json` so the catalog can show it
(with freshness judged again as of the catalog's build, by `checks.freshness`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace

import polars as pl

from dagster_project.checks.freshness import FreshnessVerdict, judge_freshness
from dagster_project.checks.rules import RuleOutcome
from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.storage import Lake

WEIGHTS = {
    "completeness": 0.2,
    "validity": 0.2,
    "uniqueness": 0.15,
    "freshness": 0.15,
    "anomalies": 0.15,
    "drift": 0.15,
}
ANOMALY_RATE_AT_ZERO = 0.05
VALUE_RULES = ("not_null", "accepted_values", "range")
HISTORY_LENGTH = 400  # evaluations kept per product: over a year of daily builds


@dataclass
class QualityScore:
    product: str
    dimensions: dict[str, float | None]  # 0..1; None: not monitored for this product
    notes: dict[str, str]  # per dimension, what was measured
    evaluated_at: str
    last_update: str | None = None  # the table's last write, for reference
    extra: dict = field(default_factory=dict)

    @property
    def score(self) -> float:
        present = {k: v for k, v in self.dimensions.items() if v is not None}
        if not present:
            return 0.0
        weight = sum(WEIGHTS[k] for k in present)
        return round(100 * sum(WEIGHTS[k] * v for k, v in present.items()) / weight, 1)

    @property
    def grade(self) -> str:
        return "good" if self.score >= 90 else "fair" if self.score >= 75 else "poor"

    def narrative(self) -> str:
        """One paragraph a product owner can read."""
        parts = [f"{self.product} scores {self.score:.0f}/100 ({self.grade})."]
        for name in WEIGHTS:
            value = self.dimensions.get(name)
            note = self.notes.get(name, "")
            if value is None:
                parts.append(f"{name.capitalize()}: {note or 'not monitored'}.")
            else:
                parts.append(f"{name.capitalize()} {value:.0%}" + (f": {note}." if note else "."))
        present = {k: v for k, v in self.dimensions.items() if v is not None}
        weakest = min(present, key=present.get) if present else None
        if weakest and present[weakest] < 1:
            parts.append(f"The weakest dimension is {weakest}.")
        return " ".join(parts)

    def with_freshness(self, verdict: FreshnessVerdict) -> QualityScore:
        """The same score with freshness as `verdict` judges it (e.g. as of a later time)."""
        value, note = verdict.score()
        return replace(
            self,
            dimensions={**self.dimensions, "freshness": value},
            notes={**self.notes, "freshness": note},
        )

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)

    @classmethod
    def from_json(cls, text: str) -> QualityScore:
        known = {f.name for f in fields(cls)}  # a score saved by an older version
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})


def completeness(frame: pl.DataFrame, contract: Contract, imputed: int) -> tuple[float, str]:
    names = [c for c in contract.column_names if c in frame.columns]
    cells = frame.height * len(names)
    if not cells:
        return 1.0, "no new rows"
    missing = int(frame.select(pl.sum_horizontal(pl.col(names).null_count())).item())
    note = f"{missing:,} of {cells:,} values missing" if missing else "no missing values"
    if imputed:
        note += f" ({imputed:,} filled in by imputation)"
    return 1 - missing / cells, note


def validity(outcomes: list[RuleOutcome], rows: int) -> tuple[float | None, str]:
    checked = [o for o in outcomes if o.rule in VALUE_RULES]
    pairs = sum(len(o.failures) for o in checked)
    if not pairs or not rows:
        return (None, "no value rules") if not pairs else (1.0, "no new rows")
    failing = sum(sum(o.failures.values()) for o in checked)
    note = f"{failing:,} value(s) break a rule" if failing else "every value within its rules"
    return max(0.0, 1 - failing / (rows * pairs)), note


def uniqueness(outcomes: list[RuleOutcome], rows: int) -> tuple[float | None, str]:
    unique = next((o for o in outcomes if o.rule == "unique"), None)
    if unique is None:
        return None, "no key or unique column"
    duplicates = sum(unique.failures.values())
    note = f"{duplicates:,} duplicate key(s)" if duplicates else "no duplicate keys"
    return max(0.0, 1 - duplicates / rows) if rows else 1.0, note


def anomaly_dimension(flagged: int, scored: int) -> tuple[float, str]:
    rate = flagged / scored if scored else 0.0
    note = f"{flagged:,} of {scored:,} new rows look anomalous ({rate:.2%})"
    return max(0.0, 1 - rate / ANOMALY_RATE_AT_ZERO), note


def drift_dimension(drifted: list[str], monitored: int) -> tuple[float, str]:
    if not drifted:
        return 1.0, f"none of {monitored} column(s) drifted"
    return 1 - len(
        drifted
    ) / monitored, f"{len(drifted)} of {monitored} drifted ({', '.join(drifted)})"


def score_uri(settings: MeshSettings, contract: Contract) -> str:
    return settings.registry_uri("quality", contract.domain, contract.product, "score.json")


def history_uri(settings: MeshSettings, contract: Contract) -> str:
    return settings.registry_uri("quality", contract.domain, contract.product, "history.jsonl")


def save_score(settings: MeshSettings, contract: Contract, score: QualityScore) -> None:
    """The latest score, and one more line of its history (the last HISTORY_LENGTH)."""
    settings.files.write_text(score_uri(settings, contract), score.as_json())
    entry = {"evaluated_at": score.evaluated_at, "score": score.score, **score.dimensions}
    lines = settings.files.read_text_or(history_uri(settings, contract), "").splitlines()
    lines = [*lines, json.dumps(entry)][-HISTORY_LENGTH:]
    settings.files.write_text(history_uri(settings, contract), "\n".join(lines) + "\n")


def score_history(settings: MeshSettings, contract: Contract) -> list[dict]:
    """Each evaluation, oldest first: `evaluated_at`, `score` (0..100) and every dimension
    (0..1, None where not monitored)."""
    text = settings.files.read_text_or(history_uri(settings, contract), "")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_score(settings: MeshSettings, contract: Contract) -> QualityScore | None:
    uri = score_uri(settings, contract)
    if not settings.files.exists(uri):
        return None
    return QualityScore.from_json(settings.files.read_text(uri))


CATALOG_FIELDS = ("score", *WEIGHTS, "narrative")


def catalog_fields(
    settings: MeshSettings, contract: Contract, freshness: FreshnessVerdict | None = None
) -> dict:
    """The product's quality as catalog columns (`quality_<dimension>`), freshness as
    `freshness` judges it (default: `judge_freshness` now); nulls before the product's
    first evaluation."""
    saved = load_score(settings, contract)
    if saved is None:
        return {f"quality_{name}": None for name in CATALOG_FIELDS}
    current = saved.with_freshness(freshness or judge_freshness(contract, Lake(settings)))
    return {
        "quality_score": current.score,
        **{f"quality_{name}": current.dimensions.get(name) for name in WEIGHTS},
        "quality_narrative": current.narrative(),
    }
