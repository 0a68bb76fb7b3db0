"""A timestamp partition column: a row's day is the UTC day of its timestamp, and windows,
predicates and partition overwrites cut at midnight UTC (half-open: 23:59:59 is the
day's, 00:00:00 the next day's). The table gets no extra column and no Delta partition."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from dagster_project.core.contracts import Contract
from dagster_project.lake.storage import DateWindow, Lake, day_of, days_sql
from tests.factories import column

D1, D2, D3 = date(2013, 1, 1), date(2013, 1, 2), date(2013, 1, 3)
# The edges of D1 and D2, and a row on D3
TIMES = [
    datetime(2013, 1, 1, 0, 0, 0),
    datetime(2013, 1, 1, 23, 59, 59),
    datetime(2013, 1, 2, 0, 0, 0),
    datetime(2013, 1, 2, 23, 59, 59, 999999),
    datetime(2013, 1, 3, 12, 0, 0),
]


@pytest.fixture
def hourly(make_contract):
    """`hourly(write_mode)`: weather/hourly readings partitioned by their `time_hour`."""

    def make(write_mode: str = "partition_overwrite", product: str = "hourly") -> Contract:
        return make_contract(
            [
                column("reading_id", "integer", primaryKey=True, primaryKeyPosition=1),
                column("time_hour", "timestamp", required=True, partitioned=True),
                column("temp", "number"),
            ],
            domain="weather",
            product=product,
            write_mode=write_mode,
        )

    return make


def readings(ids: list[int], times: list[datetime], temp: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame({"reading_id": ids, "time_hour": times, "temp": [temp] * len(ids)})


def test_day_of_is_the_utc_day_of_a_timestamp_and_a_date_itself() -> None:
    frame = pl.DataFrame({"ts": TIMES, "day": [t.date() for t in TIMES]})
    expected = [D1, D1, D2, D2, D3]
    assert frame.select(day_of("ts"))["ts"].to_list() == expected
    assert frame.select(day_of("day"))["day"].to_list() == expected


def test_day_of_a_zoned_timestamp_is_its_utc_day() -> None:
    """00:30 in Paris on 2 January is 23:30 UTC on 1 January."""
    paris = pl.DataFrame({"ts": [datetime(2013, 1, 1, 23, 30)]}).with_columns(
        pl.col("ts").dt.replace_time_zone("UTC").dt.convert_time_zone("Europe/Paris")
    )
    assert paris.select(day_of("ts")).item() == D1
    assert paris.filter(DateWindow(D1, D1).expr("ts")).height == 1
    assert paris.filter(DateWindow(D2, D2).expr("ts")).height == 0


def test_a_window_keeps_its_days_up_to_the_last_microsecond() -> None:
    frame = pl.DataFrame({"ts": TIMES})
    assert frame.filter(DateWindow(D1, D1).expr("ts"))["ts"].to_list() == TIMES[:2]
    assert frame.filter(DateWindow(D2, D3).expr("ts"))["ts"].to_list() == TIMES[2:]
    dates = pl.DataFrame({"day": [t.date() for t in TIMES]})  # a date column: the same days
    assert dates.filter(DateWindow(D1, D2).expr("day")).height == 4


def test_the_window_predicate_is_a_half_open_range_delta_rs_prunes_on() -> None:
    assert DateWindow(D1, D2).sql("ts") == "ts >= '2013-01-01' AND ts < '2013-01-03'"
    # days: one range per stretch of consecutive days
    assert days_sql("ts", {D3, D1, D2}) == "(ts >= '2013-01-01' AND ts < '2013-01-04')"
    assert days_sql("ts", {D1, D3}) == (
        "(ts >= '2013-01-01' AND ts < '2013-01-02') OR (ts >= '2013-01-03' AND ts < '2013-01-04')"
    )
    assert days_sql("ts", set()) is None


def test_the_table_is_not_delta_partitioned_and_has_only_the_contract_columns(
    lake: Lake, hourly
) -> None:
    contract = hourly()
    assert contract.partition_column == "time_hour"
    assert contract.partition_by == []  # a day is logical: no folder per instant
    lake.write(contract, readings([1, 2, 3, 4, 5], TIMES))
    assert lake.partition_columns(contract.key) == []
    assert lake.info(contract.key).columns == ["reading_id", "time_hour", "temp"]
    assert lake.day_column(contract.key) == "time_hour"
    window = lake.read(contract.key, window=DateWindow(D2, D2), column="time_hour")
    assert sorted(window["reading_id"].to_list()) == [3, 4]


def test_the_day_column_of_a_date_partitioned_and_an_unpartitioned_table(
    lake: Lake, make_contract
) -> None:
    days = make_contract(
        [column("id", "integer"), column("day", "date", partitioned=True)],
        product="days",
        write_mode="append",
    )
    plain = make_contract([column("id", "integer"), column("at", "timestamp")], product="plain")
    lake.write(days, pl.DataFrame({"id": [1], "day": [D1]}))
    lake.write(plain, pl.DataFrame({"id": [1], "at": [TIMES[0]]}))
    assert lake.day_column(days.key) == "day" and days.partition_by == ["day"]
    assert lake.day_column(plain.key) is None and plain.partition_by == []


def test_partition_overwrite_replaces_exactly_the_rows_of_the_windows_days(
    lake: Lake, hourly
) -> None:
    contract = hourly()
    lake.write(contract, readings([1, 2, 3, 4, 5], TIMES))
    # D1 again, one reading fewer and corrected: 00:00:00 of D2 is not D1's
    lake.write(contract, readings([10], [TIMES[1]], 9.0), window=DateWindow(D1, D1))
    table = lake.read(contract.key).sort("reading_id")
    assert table["reading_id"].to_list() == [3, 4, 5, 10]
    # replaying the day changes nothing (no window: the frame's days)
    lake.write(contract, readings([10], [TIMES[1]], 9.0))
    assert lake.read(contract.key).height == 4
    # only the days given: D3 is replaced, D2 kept although in the window
    lake.write(contract, readings([30], [TIMES[4]], 3.0), window=DateWindow(D2, D3), days={D3})
    assert sorted(lake.read(contract.key)["reading_id"].to_list()) == [3, 4, 10, 30]


def test_partition_overwrite_refuses_rows_outside_the_window(lake: Lake, hourly) -> None:
    contract = hourly()
    lake.write(contract, readings([1], [TIMES[0]]))
    with pytest.raises(Exception, match="failed validation"):  # 00:00:00 of D2: not D1
        lake.write(contract, readings([2], [TIMES[2]]), window=DateWindow(D1, D1))
    assert lake.read(contract.key)["reading_id"].to_list() == [1]


def test_merge_and_append_on_a_timestamp_partition(lake: Lake, hourly) -> None:
    merged = hourly("merge")
    lake.write(merged, readings([1, 2], TIMES[:2]))
    lake.write(merged, readings([2, 3], TIMES[1:3], 5.0))
    assert lake.read(merged.key).sort("reading_id")["temp"].to_list() == [1.0, 5.0, 5.0]
    assert lake.partition_columns(merged.key) == [] and lake.day_column(merged.key) == "time_hour"
    appended = hourly("append", "hourly_log")
    lake.write(appended, readings([1], TIMES[:1]))
    lake.write(appended, readings([1], TIMES[:1]))
    assert lake.read(appended.key).height == 2
    assert lake.day_column(appended.key) == "time_hour"
