"""Anomaly detection on domains that are not the simulator's: weather-station readings and
library loans, with nulls, every numeric type, no derivations, and thresholds calibrated
from each product's own history."""

import copy
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import polars as pl
import pytest

from dagster_project.checks.quality.anomaly import fit_detector, flagged_rows, score_rows
from dagster_project.checks.quality.config import AnomalyConfig, quality_config
from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.storage import DateWindow, Lake
from tests.factories import column, contract_document

START = date(2024, 6, 3)


def readings_contract(**options) -> Contract:
    """weather/readings: a station's daily readings; gusts is a count, mostly 1."""
    document = contract_document(
        [
            column("reading_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("reading_date", "date", partitioned=True, partitionKeyPosition=1),
            column("station_id", "integer"),
            column("gusts", "integer"),
            column("rainfall_mm", "number"),
            column("temperature_c", "number"),
        ],
        domain="weather",
        product="readings",
        write_mode="partition_overwrite",
    )
    value = {"groups": ["station_id"], **options}
    document["customProperties"].append({"property": "anomalyDetection", "value": value})
    return Contract(document, "<weather/readings>")


def readings(days: int, per_day: int, *, seed: int = 0, start: date = START) -> pl.DataFrame:
    """Gusts are 1 on most readings and 3 now and then; rain is skewed; temperatures
    follow each station's own climate."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    station = rng.integers(1, 9, n)
    return pl.DataFrame(
        {
            "reading_id": np.arange(n) + seed * 10**6,
            "reading_date": [start + timedelta(days=int(i // per_day)) for i in range(n)],
            "station_id": station,
            "gusts": np.where(rng.random(n) < 0.93, 1, 3),
            "rainfall_mm": np.round(rng.gamma(2.0, 3.0, n) + 0.1, 1),
            "temperature_c": np.round(10 + station * 1.5 + rng.normal(0, 2, n), 1),
        }
    )


def test_mostly_ones_with_occasional_threes_are_not_anomalies(lake):
    contract = readings_contract()
    frame = readings(3, 700)
    outcome = score_rows(lake, contract, quality_config(contract).anomaly, frame, None)
    assert outcome.count == 0, outcome.flagged["reason"].to_list()
    assert outcome.passed and not outcome.skipped


def test_a_planted_fifty_fold_value_is_flagged_and_explained(lake):
    contract = readings_contract()
    frame = readings(3, 700).with_columns(
        gusts=pl.when(pl.col("reading_id") == 1234).then(50).otherwise(pl.col("gusts"))
    )
    outcome = score_rows(lake, contract, quality_config(contract).anomaly, frame, None)
    assert outcome.flagged["reading_id"].to_list() == [1234]
    assert outcome.flagged["reason"][0].startswith("reading 1234: gusts 50 is 50×")


def test_an_integer_measure_with_nulls_is_scored(lake):
    contract = readings_contract()
    frame = readings(3, 700).with_columns(
        gusts=pl.when(pl.col("reading_id") % 7 == 0).then(None).otherwise(pl.col("gusts")),
        rainfall_mm=pl.when(pl.col("reading_id") % 11 == 0)
        .then(None)
        .otherwise(pl.col("rainfall_mm")),
    )
    frame = frame.with_columns(
        gusts=pl.when(pl.col("reading_id") == 1000).then(80).otherwise(pl.col("gusts"))
    )
    outcome = score_rows(lake, contract, quality_config(contract).anomaly, frame, None)
    assert outcome.rows_scored == frame.height
    assert outcome.flagged["reading_id"].to_list() == [1000]


@pytest.mark.parametrize(
    ("dtype", "planted"),
    [
        (pl.Int32, 60),
        (pl.UInt16, 60),
        (pl.Int8, 60),
        (pl.Float32, 60.0),
        (pl.Decimal(10, 2), Decimal("60.00")),
    ],
)
def test_every_numeric_type_is_scored(lake, dtype, planted):
    contract = readings_contract()
    frame = readings(3, 700).with_columns(pl.col("gusts", "rainfall_mm").cast(dtype))
    frame = frame.with_columns(
        gusts=pl.when(pl.col("reading_id") == 77)
        .then(pl.lit(planted, dtype=dtype))
        .otherwise(pl.col("gusts"))
    )
    outcome = score_rows(lake, contract, quality_config(contract).anomaly, frame, None)
    assert outcome.flagged["reading_id"].to_list() == [77]
    assert "gusts 60 is 60×" in outcome.flagged["reason"][0]


def loans_contract() -> Contract:
    """library/loans: no groups, no formula (nothing is derived from anything)."""
    document = contract_document(
        [
            column("loan_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("books", "integer"),
            column("days_out", "integer"),
        ],
        domain="library",
        product="loans",
    )
    document["customProperties"] = [{"property": "anomalyDetection", "value": True}]
    return Contract(document, "<library/loans>")


def test_a_product_without_derivations_or_groups_is_scored_and_explained(lake):
    rng = np.random.default_rng(3)
    n = 3_000
    frame = pl.DataFrame(
        {
            "loan_id": np.arange(n),
            "books": rng.poisson(1.5, n) + 1,
            "days_out": rng.integers(7, 22, n),
        }
    )
    # Two values that are each unusual but not extreme: odd together, named in words.
    frame = frame.with_columns(
        books=pl.when(pl.col("loan_id") == 5).then(40).otherwise(pl.col("books")),
        days_out=pl.when(pl.col("loan_id") == 5).then(400).otherwise(pl.col("days_out")),
    )
    contract = loans_contract()
    config = quality_config(contract).anomaly
    model = fit_detector(contract, config, frame, history="test", history_end=None)
    assert model.profile.derivations == []
    outcome = score_rows(lake, contract, config, frame, None)
    assert 5 in outcome.flagged["loan_id"].to_list()
    assert outcome.flagged["reason"].str.starts_with("loan ").all()
    assert outcome.passed  # one odd loan in 3,000 is within any sane tolerance


def test_every_flagged_row_is_explained_even_when_no_single_value_is_extreme(lake):
    contract = loans_contract()
    config = replace(quality_config(contract).anomaly, detectors=("isolation_forest",))
    rng = np.random.default_rng(4)
    n = 2_000
    frame = pl.DataFrame(
        {"loan_id": np.arange(n), "books": rng.poisson(2, n) + 1, "days_out": rng.poisson(14, n)}
    )
    model = fit_detector(contract, config, frame, history="test", history_end=None)
    _, z = model.score(frame)
    everything = np.full(n, 2.0)  # as if every row were flagged: each needs a sentence
    flagged = flagged_rows(contract, model, frame, everything, z)
    assert flagged.height == n and flagged["reason"].str.len_chars().min() > 10


def test_no_rows_are_not_judged(lake):
    contract = readings_contract()
    outcome = score_rows(
        lake, contract, quality_config(contract).anomaly, readings(1, 10).clear(), None
    )
    assert outcome.skipped == "no new rows to score" and not outcome.passed
    assert outcome.describe() == "not judged: no new rows to score"


def test_too_little_data_to_learn_the_usual_is_not_judged(lake):
    contract = readings_contract()
    outcome = score_rows(lake, contract, quality_config(contract).anomaly, readings(1, 40), None)
    assert not outcome.passed and outcome.count == 0
    assert outcome.skipped.startswith("40 rows to learn what is usual from; at least")


def with_odd_rain(frame: pl.DataFrame, share: float, seed: int) -> pl.DataFrame:
    odd = np.random.default_rng(seed).random(frame.height) < share
    return frame.with_columns(
        rainfall_mm=pl.when(pl.Series(odd)).then(900.0).otherwise(pl.col("rainfall_mm"))
    )


NEXT_DAY = START + timedelta(days=14)


def test_a_history_with_odd_rows_every_day_tolerates_about_as_many(lake):
    """The tolerated share comes from the product's earlier partitions: one whose every
    day has about 1% odd-looking readings does not warn about a day like the others."""
    contract = readings_contract(historyDays=14)
    config = quality_config(contract).anomaly
    lake.write(contract, with_odd_rain(readings(14, 500, seed=1), 0.01, 1))
    new = with_odd_rain(readings(1, 500, seed=2, start=NEXT_DAY), 0.01, 2)
    outcome = score_rows(lake, contract, config, new, DateWindow(NEXT_DAY, NEXT_DAY))
    assert outcome.count >= 3  # the odd rows are still flagged, for triage
    assert outcome.calibration.partitions == 14
    assert 0.01 < outcome.max_rate < 0.05 and outcome.passed, outcome.describe()
    assert "14 earlier partitions" in outcome.calibration.how
    much_worse = with_odd_rain(readings(1, 500, seed=3, start=NEXT_DAY), 0.1, 3)
    worse = score_rows(lake, contract, config, much_worse, DateWindow(NEXT_DAY, NEXT_DAY))
    assert not worse.passed  # ten times the usual share still warns


def test_a_clean_history_keeps_the_floor(lake):
    contract = readings_contract(historyDays=14, maxAnomalyRate=0.002)
    config = quality_config(contract).anomaly
    lake.write(contract, readings(14, 500, seed=1))
    new = with_odd_rain(readings(1, 500, seed=2, start=NEXT_DAY), 0.01, 2)
    outcome = score_rows(lake, contract, config, new, DateWindow(NEXT_DAY, NEXT_DAY))
    assert outcome.calibration.partitions == 14
    assert outcome.max_rate == pytest.approx(0.002) and not outcome.passed
    assert outcome.count >= 3


def test_without_enough_history_the_floor_is_tolerated_and_said_so(lake):
    contract = readings_contract()
    config = quality_config(contract).anomaly
    outcome = score_rows(lake, contract, config, readings(3, 700), None)
    assert outcome.max_rate == AnomalyConfig().maxAnomalyRate
    assert "floor" in outcome.calibration.how and outcome.calibration.partitions == 0


def test_the_verdict_does_not_depend_on_the_order_the_history_was_written_in(tmp_path):
    """Delta lists a table's files in the order they were committed (and a parallel write
    in any order): the same rows, landed day by day forwards or backwards, give the same
    detector and the same flagged rows."""
    contract = readings_contract(historyDays=14)
    config = quality_config(contract).anomaly
    history = with_odd_rain(readings(14, 500, seed=1), 0.01, 1)
    days = history["reading_date"].unique().sort().to_list()
    worse = with_odd_rain(readings(1, 500, seed=3, start=NEXT_DAY), 0.1, 3)
    outcomes = []
    for order in (days, days[::-1]):
        lake = Lake(MeshSettings(home=str(tmp_path / str(len(outcomes)))))
        for day in order:
            lake.write(contract, history.filter(pl.col("reading_date") == day), days=[day])
        outcomes.append(score_rows(lake, contract, config, worse, DateWindow(NEXT_DAY, NEXT_DAY)))
    forwards, backwards = outcomes
    assert forwards.max_rate == backwards.max_rate
    assert forwards.flagged["reading_id"].to_list() == backwards.flagged["reading_id"].to_list()
    assert forwards.count > 0


def hourly(contract: Contract) -> Contract:
    """The same product with its readings' times (a timestamp partition) for their day."""
    document = copy.deepcopy(contract.document)
    prop = document["schema"][0]["properties"][1]
    prop |= {"name": "reading_time", "logicalType": "timestamp"}
    return Contract(document, "<weather/readings>")


def at_hours(frame: pl.DataFrame) -> pl.DataFrame:
    """Each reading at an hour of its day, 23:00 included."""
    hours = pl.duration(hours=pl.int_range(pl.len()) % 24)
    time = pl.col("reading_date").cast(pl.Datetime("us")) + hours
    return frame.with_columns(reading_time=time).drop("reading_date")


def test_a_timestamp_partition_calibrates_on_its_days_not_its_instants(lake):
    contract = hourly(readings_contract(historyDays=14))
    config = quality_config(contract).anomaly
    lake.write(contract, at_hours(with_odd_rain(readings(14, 500, seed=1), 0.01, 1)))
    new = at_hours(with_odd_rain(readings(1, 500, seed=2, start=NEXT_DAY), 0.01, 2))
    outcome = score_rows(lake, contract, config, new, DateWindow(NEXT_DAY, NEXT_DAY))
    assert outcome.calibration.partitions == 14  # 14 days, not 24 hours
    assert outcome.passed, outcome.describe()
