"""The lake: Delta writes in every write mode, schema enforcement, info, and DuckDB reads."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from dagster_project.core.contracts import Contract
from dagster_project.lake.storage import (
    DateWindow,
    Lake,
    SchemaViolation,
    enforce_schema,
    in_batches,
    to_arrow,
)
from tests.factories import column

D1, D2, D3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)


def _events_columns(partitioned: bool) -> list[dict]:
    return [
        column("event_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
        column("day", "date", required=True, **({"partitioned": True} if partitioned else {})),
        column("name", required=True),
        column("amount", "number"),
    ]


@pytest.fixture
def events(make_contract):
    """`events(write_mode)`: a shop/events contract, partitioned by day for partition_overwrite."""

    def make(write_mode: str) -> Contract:
        partitioned = write_mode == "partition_overwrite"
        return make_contract(_events_columns(partitioned), product="events", write_mode=write_mode)

    return make


def frame(ids: list[int], days: list[date], names: list[str] | None = None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_id": ids,
            "day": days,
            "name": names or [f"event {i}" for i in ids],
            "amount": [float(i) * 1.5 for i in ids],
        }
    )


def rows(lake: Lake, key: str) -> pl.DataFrame:
    return lake.read(key).sort("event_id")


# -- merge ------------------------------------------------------------------------------------


def test_merge_twice_with_the_same_frame_gives_the_same_rows(lake: Lake, events) -> None:
    contract = events("merge")
    df = frame([1, 2, 3], [D1, D1, D2])
    first = lake.write(contract, df)
    after_first = rows(lake, contract.key)
    second = lake.write(contract, df)
    assert first.table_rows == second.table_rows == 3
    assert second.version == first.version + 1
    assert_frame_equal(rows(lake, contract.key), after_first)
    assert_frame_equal(after_first, enforce_schema(df, contract).sort("event_id"))


def test_merge_updates_changed_rows_and_inserts_new_ones(lake: Lake, events) -> None:
    contract = events("merge")
    lake.write(contract, frame([1, 2, 3], [D1, D1, D2]))
    result = lake.write(contract, frame([2, 4], [D1, D3], ["renamed", "event 4"]))
    assert result.mode == "merge"
    assert result.rows_written == 2
    assert result.table_rows == 4
    table = rows(lake, contract.key)
    assert table["event_id"].to_list() == [1, 2, 3, 4]
    assert table["name"].to_list() == ["event 1", "renamed", "event 3", "event 4"]


def test_merge_keeps_the_last_of_duplicate_keys_in_one_frame(lake: Lake, events) -> None:
    contract = events("merge")
    result = lake.write(contract, frame([1, 1, 2], [D1, D1, D1], ["old", "new", "two"]))
    assert result.table_rows == 2
    assert rows(lake, contract.key)["name"].to_list() == ["new", "two"]


# -- partition overwrite ----------------------------------------------------------------------


def test_a_merge_deletes_the_keys_it_retracts_in_the_same_commit(lake: Lake, events) -> None:
    contract = events("merge")
    lake.write(contract, frame([1, 2, 3], [D1, D1, D2]))
    before = lake.info(contract.key).version
    result = lake.write(
        contract, frame([2], [D1], ["fixed"]), retract=pl.DataFrame({"event_id": [3, 9]})
    )
    assert result.version == before + 1 and result.rows_retracted == 1
    assert rows(lake, contract.key)[["event_id", "name"]].rows() == [(1, "event 1"), (2, "fixed")]


def test_a_retracted_key_that_is_also_written_stays(lake: Lake, events) -> None:
    contract = events("merge")
    lake.write(contract, frame([1, 2], [D1, D1]))
    lake.write(contract, frame([2], [D1], ["again"]), retract=pl.DataFrame({"event_id": [2]}))
    assert rows(lake, contract.key)["name"].to_list() == ["event 1", "again"]


def test_retract_matches_the_key_within_its_day_only(lake: Lake, events) -> None:
    contract = events("partition_overwrite")
    lake.write(contract, frame([1], [D1]))
    lake.write(contract, frame([1, 2], [D2, D2]))  # key 1 again, on another day
    result = lake.retract(contract, pl.DataFrame({"event_id": [1], "day": [D2]}))
    assert result.rows_retracted == 1
    assert rows(lake, contract.key)[["event_id", "day"]].rows() == [(1, D1), (2, D2)]


def test_a_write_reports_the_rows_as_written_one_per_key(lake: Lake, events) -> None:
    contract = events("partition_overwrite")
    result = lake.write(contract, frame([1, 2, 1], [D1, D1, D1], ["a", "b", "c"]))
    assert result.frame.sort("event_id")["name"].to_list() == ["c", "b"]


def test_partition_overwrite_replaces_only_the_windows_days(lake: Lake, events) -> None:
    contract = events("partition_overwrite")
    lake.write(contract, frame([1, 2, 3, 4, 5], [D1, D1, D2, D2, D3]))
    assert lake.partition_columns(contract.key) == ["day"]
    result = lake.write(contract, frame([30, 31, 32], [D2, D2, D2]), window=DateWindow(D2, D2))
    assert result.table_rows == 6
    table = rows(lake, contract.key)
    assert table.filter(pl.col("day") == D1)["event_id"].to_list() == [1, 2]
    assert table.filter(pl.col("day") == D2)["event_id"].to_list() == [30, 31, 32]
    assert table.filter(pl.col("day") == D3)["event_id"].to_list() == [5]


def test_partition_overwrite_empties_window_days_without_rows(lake: Lake, events) -> None:
    contract = events("partition_overwrite")
    lake.write(contract, frame([1, 2, 3], [D1, D2, D3]))
    lake.write(contract, frame([20], [D2]), window=DateWindow(D2, D3))
    assert rows(lake, contract.key)["event_id"].to_list() == [1, 20]


def test_partition_overwrite_without_window_replaces_the_frames_days(lake: Lake, events) -> None:
    contract = events("partition_overwrite")
    lake.write(contract, frame([1, 2, 3], [D1, D2, D3]))
    lake.write(contract, frame([21, 22], [D2, D2]))  # the window is D2 .. D2
    assert rows(lake, contract.key)["event_id"].to_list() == [1, 3, 21, 22]
    # Replaying the same day changes nothing.
    lake.write(contract, frame([21, 22], [D2, D2]))
    assert rows(lake, contract.key)["event_id"].to_list() == [1, 3, 21, 22]


def test_partition_overwrite_of_no_rows_and_no_window_keeps_every_day(lake: Lake, events) -> None:
    contract = events("partition_overwrite")
    lake.write(contract, frame([1, 2], [D1, D2]))
    result = lake.write(contract, frame([], []))
    assert result.table_rows == 2
    assert rows(lake, contract.key)["event_id"].to_list() == [1, 2]


def test_partition_overwrite_refuses_rows_outside_the_window(lake: Lake, events) -> None:
    contract = events("partition_overwrite")
    lake.write(contract, frame([1], [D1]))
    with pytest.raises(Exception, match="failed validation"):
        lake.write(contract, frame([2], [D3]), window=DateWindow(D1, D1))
    assert rows(lake, contract.key)["event_id"].to_list() == [1]


# -- append and overwrite ---------------------------------------------------------------------


def test_append_adds_every_row(lake: Lake, events) -> None:
    contract = events("append")
    lake.write(contract, frame([1, 2], [D1, D1]))
    result = lake.write(contract, frame([1, 3], [D2, D2]))
    assert result.mode == "append"
    assert result.table_rows == 4
    assert rows(lake, contract.key)["event_id"].to_list() == [1, 1, 2, 3]


def test_overwrite_replaces_the_table(lake: Lake, events) -> None:
    contract = events("overwrite")
    lake.write(contract, frame([1, 2, 3], [D1, D1, D1]))
    result = lake.write(contract, frame([7], [D2]))
    assert result.table_rows == 1
    assert rows(lake, contract.key)["event_id"].to_list() == [7]


def test_mode_argument_overrides_the_contracts_write_mode(lake: Lake, events) -> None:
    contract = events("merge")
    lake.write(contract, frame([1, 2], [D1, D1]))
    result = lake.write(contract, frame([3], [D1]), mode="overwrite")
    assert result.mode == "overwrite"
    assert rows(lake, contract.key)["event_id"].to_list() == [3]


# -- schema enforcement -----------------------------------------------------------------------


def test_values_are_cast_to_contract_types_in_contract_order(lake: Lake, events) -> None:
    contract = events("merge")
    raw = pl.DataFrame(
        {
            "amount": [1, 2],  # integers for a number column
            "name": ["a", "b"],
            "day": ["2025-03-01", "2025-03-02"],  # ISO strings for a date column
            "event_id": ["10", "11"],  # strings for an integer column
            "source": ["x", "y"],  # not in the contract: dropped
        }
    )
    lake.write(contract, raw)
    table = rows(lake, contract.key)
    assert table.columns == ["event_id", "day", "name", "amount"]
    assert table.schema == pl.Schema(
        {"event_id": pl.Int64, "day": pl.Date, "name": pl.String, "amount": pl.Float64}
    )
    assert table["day"].to_list() == [D1, D2]
    assert lake.column_types(contract.key) == {
        "event_id": "int64",
        "day": "date32[day]",
        "name": "string",
        "amount": "double",
    }


def test_text_dates_and_timestamps_are_parsed(make_contract) -> None:
    contract = make_contract(
        [column("seen_at", "timestamp", required=True), column("seen_on", "date")],
        write_mode="append",
    )
    out = enforce_schema(
        pl.DataFrame(
            {
                "seen_at": ["2025-03-01 10:00:00", "2025-03-01T11:30:00.5"],
                "seen_on": [None, "2025-03-02"],
            }
        ),
        contract,
    )
    assert out.schema == pl.Schema({"seen_at": pl.Datetime("us"), "seen_on": pl.Date})
    assert out["seen_at"].to_list() == [
        datetime(2025, 3, 1, 10),
        datetime(2025, 3, 1, 11, 30, 0, 500_000),
    ]
    assert out["seen_on"].to_list() == [None, D2]
    with pytest.raises(SchemaViolation, match="values do not fit"):
        enforce_schema(
            pl.DataFrame({"seen_at": ["2025-03-01 10:00:00"], "seen_on": ["yesterday"]}), contract
        )


@pytest.mark.parametrize(
    ("written", "instant"),
    [
        ("2013-01-01T10:00:00Z", datetime(2013, 1, 1, 10)),  # readr::write_csv, ISO 8601
        ("2013-06-01T05:00:00-04:00", datetime(2013, 6, 1, 9)),
        ("2013-01-01 05:00:00+00:00", datetime(2013, 1, 1, 5)),
    ],
)
def test_a_text_timestamp_with_an_offset_is_its_instant_in_utc(
    make_contract, written: str, instant: datetime
) -> None:
    contract = make_contract([column("seen_at", "timestamp")], write_mode="append")
    out = enforce_schema(pl.DataFrame({"seen_at": [written, None]}), contract)
    assert out.schema == pl.Schema({"seen_at": pl.Datetime("us")})
    assert out["seen_at"].to_list() == [instant, None]
    zoned = pl.DataFrame({"seen_at": [datetime(2013, 6, 1, 5)]}).with_columns(
        pl.col("seen_at").dt.replace_time_zone("America/New_York")
    )
    assert enforce_schema(zoned, contract)["seen_at"].to_list() == [datetime(2013, 6, 1, 9)]


def test_missing_optional_column_is_written_as_nulls(lake: Lake, events) -> None:
    contract = events("merge")
    lake.write(contract, frame([1], [D1]).drop("amount"))
    assert rows(lake, contract.key)["amount"].to_list() == [None]


def test_missing_required_column_is_a_schema_violation(lake: Lake, events) -> None:
    contract = events("merge")
    with pytest.raises(SchemaViolation, match=r"missing required column\(s\) name"):
        lake.write(contract, frame([1], [D1]).drop("name"))
    assert not lake.exists(contract.key)


def test_uncastable_values_are_a_schema_violation(lake: Lake, events) -> None:
    contract = events("merge")
    bad = frame([1, 2], [D1, D1]).with_columns(pl.Series("event_id", ["1", "abc"]))
    with pytest.raises(SchemaViolation, match="event_id") as info:
        lake.write(contract, bad)
    assert "abc" in str(info.value)
    assert "\n" not in str(info.value)  # one line: no dump of polars' query plan
    assert not lake.exists(contract.key)


# -- info and reading -------------------------------------------------------------------------


def test_info_reports_rows_version_and_columns(lake: Lake, events) -> None:
    contract = events("append")
    assert lake.info(contract.key) is None
    assert not lake.exists(contract.key)
    lake.write(contract, frame([1, 2], [D1, D1]))
    first = lake.info(contract.key)
    assert first is not None
    assert (first.rows, first.version) == (2, 0)
    assert first.columns == ["event_id", "day", "name", "amount"]
    assert first.uri == lake.settings.table_uri("shop", "events")
    lake.write(contract, frame([3], [D2]))
    second = lake.info(contract.key)
    assert second is not None
    assert (second.rows, second.version) == (3, 1)
    assert second.last_update >= first.last_update


def test_scan_with_a_window_and_time_travel(lake: Lake, events) -> None:
    contract = events("append")
    lake.write(contract, frame([1, 2, 3], [D1, D2, D3]))
    lake.write(contract, frame([4], [D3]))
    window = lake.read(contract.key, window=DateWindow(D2, D3), column="day")
    assert sorted(window["event_id"].to_list()) == [2, 3, 4]
    assert lake.read(contract.key, version=0).height == 3
    with pytest.raises(ValueError, match="date column"):
        lake.scan(contract.key, window=DateWindow(D1, D1))


def test_tables_join_and_filter_on_strings_in_duckdb(
    lake: Lake, demo_contracts: dict[str, Contract]
) -> None:
    """Tables written from polars frames (string_view in Arrow) stay queryable by DuckDB."""
    stores = demo_contracts["sales/stores"]
    profiles = demo_contracts["customers/customer_profiles"]
    lake.write(
        stores,
        pl.DataFrame(
            {
                "store_id": [1, 2, 3],
                "store_name": ["Harbour", "Old Town", "Mall"],
                "city": ["Porto", "Lisbon", "Porto"],
                "region": ["North", "South", "North"],
            }
        ),
    )
    lake.write(
        profiles,
        pl.DataFrame(
            {
                "customer_id": [10, 11, 12, 13],
                "full_name": ["A B", "C D", "E F", "G H"],
                "signup_date": [D1] * 4,
                "loyalty_tier": ["gold", "bronze", "gold", "silver"],
                "city": ["Porto", "Porto", "Lisbon", "Faro"],
            }
        ),
    )
    con = duckdb.connect()
    con.register("stores", lake.dataset("sales/stores"))
    con.register("profiles", lake.dataset("customers/customer_profiles"))
    result = con.execute(
        """
        SELECT s.store_name, count(*) AS gold_customers
        FROM stores s JOIN profiles p ON p.city = s.city
        WHERE s.region = 'North' AND p.loyalty_tier = 'gold'
        GROUP BY s.store_name ORDER BY s.store_name
        """
    ).fetchall()
    assert result == [("Harbour", 1), ("Mall", 1)]
    filtered = con.execute("SELECT customer_id FROM profiles WHERE city LIKE 'Po%' ORDER BY 1")
    assert filtered.fetchall() == [(10,), (11,)]


def test_writes_go_to_delta_in_small_zero_copy_batches():
    frame = pl.DataFrame({"id": range(300_000), "day": [date(2025, 1, 1)] * 300_000})
    table = to_arrow(frame.rechunk())
    batched = in_batches(table)
    assert [b.num_rows for b in batched.to_batches()] == [131_072, 131_072, 37_856]
    assert batched.equals(table)
    first = batched.column("id").chunk(0).buffers()[1]
    assert first.address == table.column("id").chunk(0).buffers()[1].address  # no copy


def test_a_merged_tables_text_is_filtered_in_duckdb(lake: Lake, events) -> None:
    """delta-rs's merge writes text as string_view, the first write as large_string: a
    filter DuckDB pushes down to the dataset compares both (it failed: no kernel)."""
    contract = events("merge")
    lake.write(contract, frame([1, 2], [D1, D1], ["alpha", "beta"]))
    lake.write(contract, frame([2, 3], [D1, D2], ["beta 2", "gamma"]))  # a merge
    con = duckdb.connect()
    con.register("events", lake.dataset(contract.key))
    found = con.sql("SELECT event_id FROM events WHERE name = 'gamma' OR name < 'b'").fetchall()
    assert sorted(found) == [(1,), (3,)]


def test_a_partitioned_tables_text_is_filtered_in_duckdb_after_a_merge(lake: Lake, events) -> None:
    contract = events("partition_overwrite")
    lake.write(contract, frame([1, 2], [D1, D2], ["alpha", "beta"]))
    lake.retract(contract, pl.DataFrame({"event_id": [1], "day": [D1]}), frame([3], [D1]))
    con = duckdb.connect()
    con.register("events", lake.dataset(contract.key))
    sql = "SELECT event_id, day FROM events WHERE name <> 'alpha' AND day = DATE '2025-03-01'"
    assert con.sql(sql).fetchall() == [(3, D1)]
