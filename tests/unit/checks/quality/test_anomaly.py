from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from dagster_project.checks.quality import anomaly
from dagster_project.checks.quality.anomaly import (
    corrupt,
    detector_for,
    fit_detector,
    load_detector,
    score_rows,
)
from dagster_project.checks.quality.companions import anomalies_contract
from dagster_project.checks.quality.config import quality_config
from dagster_project.checks.quality.detectors import average_precision, roc_auc
from dagster_project.checks.quality.features import FeatureProfile
from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.storage import DateWindow, Lake
from demo.simulator import AnomalySpec, simulate

START = date(2025, 3, 3)


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    """60k simulated order lines over 6 days, 1% anomalous, with their ground truth."""
    home = tmp_path_factory.mktemp("anomalies")
    settings = MeshSettings(home=str(home))
    simulate(settings, days=6, scale=60_000, start=START, anomalies=AnomalySpec(rate=0.01))
    lines = pl.read_parquet(str(home / "landing/sales/order_lines/*.parquet"))
    truth = pl.read_parquet(str(home / "registry/simulator/ground_truth/anomalies/*.parquet"))
    kind = lines.join(truth, on=["order_id", "line_number"], how="left", maintain_order="left")
    return lines, kind["kind"]


@pytest.fixture
def order_lines(demo_contracts):
    contract = demo_contracts["sales/order_lines"]
    return contract, quality_config(contract).anomaly


def test_injected_anomalies_rank_first_and_are_flagged(lake, landed, order_lines):
    lines, kind = landed
    contract, config = order_lines
    outcome = score_rows(lake, contract, config, lines, None)
    scores, _ = outcome.detector.score(lines)
    labels = kind.is_not_null().to_numpy()
    assert roc_auc(labels, scores) >= 0.95
    assert average_precision(labels, scores) >= 0.7
    flagged = scores >= 1
    assert (labels & flagged).sum() / labels.sum() > 0.9  # recall
    assert (labels & flagged).sum() / flagged.sum() > 0.7  # precision
    assert not outcome.passed and outcome.count == int(flagged.sum())
    assert "fitted" not in outcome.detector.history or "no history" in outcome.detector.history
    trials = {t["detector"] for t in outcome.detector.trials}
    assert trials == {"robust_z", "isolation_forest", "ecod"}


def test_scoring_in_blocks_gives_exactly_the_whole_frames_scores(
    lake, landed, order_lines, monkeypatch
):
    lines, _ = landed
    contract, config = order_lines
    model = score_rows(lake, contract, config, lines, None).detector
    whole_scores, whole_z = model.score(lines)
    monkeypatch.setattr(anomaly, "SCORE_BLOCK_ROWS", 7_000)  # 9 blocks, the last one short
    scores, z = model.score(lines)
    assert np.array_equal(scores, whole_scores) and np.array_equal(z, whole_z)


def test_each_kind_of_anomaly_is_explained_in_words(lake, landed, order_lines):
    lines, kind = landed
    contract, config = order_lines
    flagged = score_rows(lake, contract, config, lines, None).flagged
    reasons = flagged.join(
        lines.select("order_id", "line_number").with_columns(kind=kind),
        on=["order_id", "line_number"],
    )

    def reason(k: str) -> str:
        return reasons.filter(pl.col("kind") == k)["reason"][0]

    derivation = reason("derivation")
    assert "net_amount" in derivation
    assert "does not match quantity × unit_price × (1 − discount)" in derivation
    assert "normal" in derivation  # e.g. "quantity and unit_price are normal"
    contextual = reason("contextual")
    assert contextual.startswith("order ") and " line " in contextual
    assert "unit_price" in contextual and "the usual for product" in contextual
    assert "quantity" in reason("spike")
    assert set(flagged.columns) == set(anomalies_contract(contract).column_names)
    assert flagged["status"].unique().to_list() == ["open"]


def test_clean_rows_raise_no_alarm(lake, landed, order_lines):
    lines, kind = landed
    contract, config = order_lines
    clean = lines.filter(kind.is_null())
    outcome = score_rows(lake, contract, config, clean, None)
    assert outcome.rate <= config.maxAnomalyRate
    assert outcome.passed


def test_the_fitted_detector_is_kept_and_refitted_when_the_contract_changes(
    mesh_home, lake, landed, order_lines
):
    lines, _ = landed
    contract, config = order_lines
    window = DateWindow(START, START)
    first, refitted = detector_for(lake, contract, config, lines.head(5000), window)
    assert refitted and load_detector(mesh_home, contract) is not None
    again, refitted = detector_for(lake, contract, config, lines.head(5000), window)
    assert not refitted and again.fitted_at == first.fitted_at
    later = DateWindow(START + timedelta(days=30), START + timedelta(days=30))
    assert detector_for(lake, contract, config, lines.head(5000), later)[1]  # history moved on
    bumped = Contract({**contract.document, "version": "1.2.0"})
    assert detector_for(lake, bumped, config, lines.head(5000), later)[1]  # new contract


def test_history_before_the_window_is_what_the_detector_learns_from(
    mesh_home, landed, demo_contracts
):
    lines, _ = landed
    contract = demo_contracts["sales/order_lines"]
    lake = Lake(mesh_home)
    history = lines.filter(pl.col("order_date") < START + timedelta(days=5))
    lake.write(contract, history)
    last = START + timedelta(days=5)
    model, _ = detector_for(
        lake, contract, quality_config(contract).anomaly, lines, DateWindow(last, last)
    )
    assert f"from {START - timedelta(days=23)} to {last - timedelta(days=1)}" in model.history
    assert model.history_end == last - timedelta(days=1)


def test_corruption_marks_exactly_the_rows_it_changed(landed, order_lines):
    lines, _ = landed
    contract, config = order_lines
    profile = FeatureProfile.for_contract(contract, config).fit(lines)
    sample = lines.head(4000)
    changed, labels = corrupt(sample, profile, np.random.default_rng(0))
    assert labels.sum() == 200
    columns = ["quantity", "unit_price", "net_amount"]
    differs = (changed.select(columns) != sample.select(columns)).select(
        pl.any_horizontal(pl.all())
    )
    assert not differs.to_series().to_numpy()[~labels].any()
    assert differs.to_series().to_numpy()[labels].mean() > 0.9  # a swap may pick an equal value


def test_detector_fitted_without_groups_or_formulas_still_works(landed, make_contract):
    from tests.factories import column

    lines, kind = landed
    contract = make_contract(
        [
            column("order_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("line_number", "integer", primaryKey=True, primaryKeyPosition=2, required=True),
            column("quantity", "integer"),
            column("net_amount", "number"),
        ]
    )
    from dagster_project.checks.quality.config import AnomalyConfig

    model = fit_detector(contract, AnomalyConfig(), lines, history="test", history_end=None)
    scores, _ = model.score(lines)
    spikes = (kind == "spike").fill_null(False).to_numpy()
    assert roc_auc(spikes, scores) > 0.9  # spikes are odd even without context


def test_a_tiny_history_falls_back_to_robust_z(landed, order_lines):
    lines, _ = landed
    contract, config = order_lines
    model = fit_detector(contract, config, lines.head(200), history="tiny", history_end=None)
    assert model.detector.name == "robust_z" and model.trials == []
    assert "too few rows" in model.criterion
    assert model.score(lines.head(50))[0].shape == (50,)


@pytest.mark.parametrize("start", [date(2025, 3, 1), date(2026, 12, 1), date(2024, 1, 10)])
def test_a_clean_demo_sized_first_build_passes_whatever_its_first_day(mesh_home, start):
    """`mesh demo --scale 2000 --days 3`: no history, mostly-1 quantities, small groups.
    Per-product calibration keeps ordinary values (a quantity of 3 or 7) unflagged."""
    from dagster_project.core.contracts import load_contract
    from tests.factories import REPO

    contract = load_contract(REPO / "domains/sales/contracts/order_lines.odcs.yaml")
    simulate(mesh_home, days=3, scale=2_000, start=start)
    lines = pl.read_parquet(f"{mesh_home.home}/landing/sales/order_lines/*.parquet")
    outcome = score_rows(Lake(mesh_home), contract, quality_config(contract).anomaly, lines, None)
    assert outcome.passed, outcome.describe()
    assert outcome.count <= 1, outcome.flagged["reason"].to_list()


def test_a_group_without_values_of_a_measure_is_judged_against_all_rows(make_contract):
    """Real survey data: a species caught for a year before anyone weighed it has rows but
    no usual weight. Its first weights are compared with all rows and said so, never with
    "the usual for species NL" (which was the overall median filled in)."""
    from dagster_project.checks.quality.config import AnomalyConfig
    from tests.factories import column

    contract = make_contract(
        [
            column("record_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("species_id"),
            column("hindfoot_length", "number"),
            column("weight", "number"),
        ]
    )
    rng = np.random.default_rng(1)
    n = 400
    history = pl.DataFrame(
        {
            "record_id": range(n),
            "species_id": ["DM"] * 300 + ["NL"] * 100,
            "hindfoot_length": np.r_[rng.normal(36, 1, 300), rng.normal(32, 1, 100)],
            "weight": [*rng.normal(42, 3, 300).tolist(), *[None] * 100],  # NL never weighed
        }
    )
    config = AnomalyConfig(columns=("hindfoot_length", "weight"), groups=("species_id",))
    profile = FeatureProfile.for_contract(contract, config).fit(history)
    nl = pl.DataFrame(
        {"record_id": [1000], "species_id": ["NL"], "hindfoot_length": [32.0], "weight": [200.0]}
    )
    z = profile.transform(nl)
    names = profile.feature_names
    assert z[0, names.index("weight|species_id")] == 0.0  # no usual weight for NL
    assert z[0, names.index("weight|*")] > 4  # 200 g is far from all rows' usual
    assert z[0, names.index("hindfoot_length|species_id")] == pytest.approx(0, abs=1)
    [reason] = profile.explain(nl, z, ["record 1000"])
    assert "across all rows" in reason and "species NL" not in reason, reason
