"""Drift over a whole refresh window of small daily partitions, on a domain that is not the
simulator's (weather-station readings), with its minimum and window set in the contract;
too little data is reported as not judged, in the check result and the quality score."""

from datetime import date, timedelta

import dagster as dg
import numpy as np
import polars as pl
import pytest

from dagster_project.checks.quality.checks import evaluate_quality
from dagster_project.checks.quality.config import quality_config
from dagster_project.checks.quality.drift import evaluate_drift, periods
from dagster_project.core.contracts import Contract
from dagster_project.lake.storage import DateWindow
from tests.factories import column, contract_document

START = date(2024, 9, 2)
DAYS = 12
WARM_DAY = START + timedelta(days=7)  # a heat wave on one day in the middle of the window


def readings_contract(drift: dict) -> Contract:
    document = contract_document(
        [
            column("reading_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("reading_date", "date", partitioned=True, partitionKeyPosition=1),
            column("temperature_c", "number"),
            column("sky", "string", enum=[{"value": "clear"}, {"value": "cloudy"}]),
        ],
        domain="weather",
        product="readings",
        write_mode="partition_overwrite",
    )
    # Small samples: distances of 0.1 happen by chance (see DriftConfig.minRows), so this
    # contract asks for larger effects.
    drift = {"numThreshold": 0.3, "catThreshold": 0.3, **drift}
    document["customProperties"].append({"property": "drift", "value": drift})
    return Contract(document, "<weather/readings>")


def readings(per_day: int = 300) -> pl.DataFrame:
    """300 readings a day; on WARM_DAY it is 8 degrees warmer."""
    rng = np.random.default_rng(7)
    n = DAYS * per_day
    day = [START + timedelta(days=i // per_day) for i in range(n)]
    warm = np.array([d == WARM_DAY for d in day])
    return pl.DataFrame(
        {
            "reading_id": np.arange(n),
            "reading_date": day,
            "temperature_c": np.round(rng.normal(15, 3, n) + 8 * warm, 1),
            "sky": np.where(rng.random(n) < 0.6, "clear", "cloudy"),
        }
    )


@pytest.fixture
def built(lake):
    def build(drift: dict) -> Contract:
        contract = readings_contract(drift)
        lake.write(contract, readings())
        return contract

    return build


WINDOW = DateWindow(START + timedelta(days=5), START + timedelta(days=DAYS - 1))


def test_the_contract_sets_the_minimum_the_window_and_the_periods(built):
    contract = built({"minRows": 100, "referenceDays": 5, "maxPeriods": 10})
    config = quality_config(contract).drift
    assert (config.minRows, config.referenceDays, config.maxPeriods) == (100, 5, 10)


def test_a_drifted_day_in_the_middle_of_the_window_is_found(lake, built):
    """Judging only the window's last day would pass: its reference (the 3 days before
    it) no longer holds the warm day."""
    contract = built({"minRows": 250, "referenceDays": 3})
    outcome = evaluate_drift(lake, contract, quality_config(contract).drift, WINDOW)
    assert [c.column for c in outcome.drifted] == ["temperature_c"]
    assert outcome.current == f"reading_date {WARM_DAY}"  # the worst period is reported
    assert outcome.reference == "the 3 days before" and outcome.reference_rows == 900
    summary = outcome.summary()
    assert len(summary) == 7 and all("skipped" not in p for p in summary)
    drifted = {p["period"]: bool(p["drifted"]) for p in summary}
    assert drifted[f"reading_date {WARM_DAY}"]
    assert not any(drifted[f"reading_date {WINDOW.start + timedelta(days=i)}"] for i in (0, 1))
    assert not drifted[f"reading_date {WINDOW.end}"]  # its reference is calm again
    assert outcome.report_uri.endswith(f"reports/drift/weather/readings/{WARM_DAY}.html")
    assert "(7 of 7 periods of the window judged; drift in " in outcome.describe()


def test_small_days_are_pooled_into_periods_of_at_least_the_minimum(lake, built):
    contract = built({"minRows": 800, "referenceDays": 6})
    config = quality_config(contract).drift
    found = periods(lake, contract, config, WINDOW)  # 300 rows a day: three days a period
    assert [(p.start, p.end) for p in found] == [
        (WINDOW.start, WINDOW.start + timedelta(days=3)),  # the oldest day joins the oldest
        (WINDOW.end - timedelta(days=2), WINDOW.end),
    ]
    outcome = evaluate_drift(lake, contract, config, WINDOW)
    assert outcome.passed or outcome.drifted  # judged either way
    assert not outcome.skipped


def test_a_long_window_is_judged_in_at_most_max_periods(lake, built):
    contract = built({"minRows": 250, "referenceDays": 3, "maxPeriods": 3})
    window = DateWindow(START, START + timedelta(days=DAYS - 1))
    found = periods(lake, contract, quality_config(contract).drift, window)
    assert len(found) == 3 and found[0].start == START and found[-1].end == window.end
    outcome = evaluate_drift(lake, contract, quality_config(contract).drift, window)
    first = outcome.summary()[0]
    assert first["reference_rows"] == 0 and "skipped" in first  # nothing before the data


def test_too_little_data_is_not_judged_and_never_passed(lake, built):
    contract = built({"minRows": 5_000})
    outcome = evaluate_drift(lake, contract, quality_config(contract).drift, WINDOW)
    assert outcome.skipped and not outcome.passed and not outcome.drifted
    assert outcome.describe().startswith("not judged: 2,100 rows in reading_date ")
    assert outcome.describe().endswith("minRows asks for 5,000 on each side")


def test_a_check_that_could_not_judge_says_so_and_is_left_out_of_the_score(lake, built):
    contract = built({"minRows": 5_000})
    contract.document["customProperties"].append(
        {"property": "anomalyDetection", "value": {"minRows": 5_000}}
    )
    contract = Contract(contract.document, "<weather/readings>")
    frame = readings().filter(WINDOW.expr("reading_date"))
    result = evaluate_quality(
        None,
        lake,
        contract,
        frame,
        window=WINDOW,
        outcomes=[],
        info=lake.info(contract.key),
    )
    checks = {c.check_name: c for c in result.check_results}
    for name in ("anomalies", "drift"):
        check = checks[name]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        assert check.description.startswith("not judged: ")
        assert check.metadata["skipped"].value == check.description.removeprefix("not judged: ")
        assert result.score.dimensions[name] is None
        assert result.score.notes[name].startswith("not judged: ")
    assert "Drift: not judged: " in result.score.narrative()
    empty = evaluate_quality(
        None, lake, contract, frame.clear(), window=WINDOW, outcomes=[], info=None
    )
    anomalies = next(c for c in empty.check_results if c.check_name == "anomalies")
    assert not anomalies.passed and anomalies.description == "not judged: no new rows to score"


def test_a_timestamp_partition_is_judged_by_its_utc_days(lake):
    """Readings at every hour, partitioned by their time: periods, reference and the
    drifted day are days (23:00 counts for its day), as with a date column."""
    document = readings_contract({"minRows": 250, "referenceDays": 3}).document
    document["schema"][0]["properties"][1] |= {"name": "reading_time", "logicalType": "timestamp"}
    contract = Contract(document, "<weather/readings>")
    hours = pl.duration(hours=pl.int_range(pl.len()).over("reading_date") % 24)
    time = pl.col("reading_date").cast(pl.Datetime("us")) + hours
    lake.write(contract, readings().with_columns(reading_time=time).drop("reading_date"))
    config = quality_config(contract).drift
    assert len(periods(lake, contract, config, WINDOW)) == 7  # one a day, 300 rows each
    outcome = evaluate_drift(lake, contract, config, WINDOW)
    assert [c.column for c in outcome.drifted] == ["temperature_c"]
    assert outcome.current == f"reading_time {WARM_DAY}"
    assert outcome.reference_rows == 900
    newest = evaluate_drift(lake, contract, config, None)  # no window: the newest day
    assert newest.current == f"reading_time {WINDOW.end}"
