"""Landing files: listing, validation with clear reasons, quarantine, and partial loads."""

from __future__ import annotations

import copy
import io
import json
import os
from datetime import date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.landing import (
    REASON_SUFFIX,
    LandingError,
    LandingFile,
    already_loaded,
    file_day,
    landing_files,
    load_landing,
    quarantine,
    read_landing_file,
    record_loaded,
    unsettled,
)
from dagster_project.lake.screening import Violation, violation
from dagster_project.lake.storage import DateWindow, enforce_schema
from tests.factories import column

D1, D2 = date(2025, 3, 1), date(2025, 3, 2)


@pytest.fixture
def stores(demo_contracts: dict[str, Contract]) -> Contract:
    return demo_contracts["sales/stores"]


@pytest.fixture
def order_lines(demo_contracts: dict[str, Contract]) -> Contract:
    return demo_contracts["sales/order_lines"]


def store_rows() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "store_id": [1, 2],
            "store_name": ["Harbour", "Old Town"],
            "city": ["Porto", "Lisbon"],
            "region": ["North", "South"],
            "opened_date": [date(2020, 5, 1), date(2021, 6, 2)],
            "size_sqm": [850.0, 1200.5],
        }
    )


def order_rows(day: date, first_order: int = 1) -> pl.DataFrame:
    n = 3
    return pl.DataFrame(
        {
            "order_id": [first_order + i for i in range(n)],
            "line_number": [1] * n,
            "order_ts": [datetime(day.year, day.month, day.day, 9 + i, 15) for i in range(n)],
            "order_date": [day] * n,
            "store_id": [1, 2, 1],
            "customer_id": [10, 11, 12],
            "product_id": [5, 6, 7],
            "channel": ["store", "online", "store"],
            "quantity": [1, 2, 3],
            "unit_price": [2.0, 3.5, 1.25],
            "discount": [0.0, 0.1, 0.0],
            "net_amount": [2.0, 6.3, 3.75],
            "payment_type": ["card", "cash", None],
        }
    )


def to_bytes(frame: pl.DataFrame, kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "csv":
        frame.write_csv(buffer)
    else:
        frame.write_parquet(buffer)
    return buffer.getvalue()


def land(settings: MeshSettings, contract: Contract, name: str, data: bytes) -> LandingFile:
    """Write a landing file and return it as `landing_files` lists it."""
    settings.files.write_bytes(
        f"{settings.landing_uri(contract.domain, contract.product)}/{name}", data
    )
    return next(f for f in landing_files(settings, contract) if f.name == name)


def quarantined(settings: MeshSettings, contract: Contract) -> list[str]:
    folder = f"{settings.quarantine_uri(contract.domain)}/{contract.product}"
    return [u.rsplit("/", 1)[-1] for u in settings.files.list_files(folder)]


# -- listing ----------------------------------------------------------------------------------


def test_landing_files_oldest_first_skipping_hidden_and_reason_files(
    mesh_home: MeshSettings, stores: Contract
) -> None:
    for name in [
        "2025-03-02.parquet",
        "2025-03-01.parquet",
        "2025-03-01-late.csv",
        "reference.csv",
        ".2025-03-03.parquet.tmp",
        "_SUCCESS",
        "2025-03-01.csv.reason.json",
    ]:
        land_raw = f"{mesh_home.landing_uri('sales', 'stores')}/{name}"
        mesh_home.files.write_bytes(land_raw, b"x")
    files = landing_files(mesh_home, stores)
    assert [f.name for f in files] == [
        "reference.csv",  # no day in its name: first
        "2025-03-01.parquet",
        "2025-03-01-late.csv",  # after the day's file: it corrects it
        "2025-03-02.parquet",
    ]
    assert [f.day for f in files] == [None, D1, D1, D2]
    assert all(f.signature for f in files)


def test_landing_files_in_a_window_keep_only_its_days(
    mesh_home: MeshSettings, stores: Contract
) -> None:
    for name in ["2025-02-28.csv", "2025-03-01.csv", "2025-03-02.csv", "undated.csv"]:
        mesh_home.files.write_bytes(f"{mesh_home.landing_uri('sales', 'stores')}/{name}", b"x")
    window = DateWindow(D1, D2)
    assert [f.name for f in landing_files(mesh_home, stores, window)] == [
        "2025-03-01.csv",
        "2025-03-02.csv",
    ]
    assert landing_files(mesh_home, stores, DateWindow(D2, D2))[0].name == "2025-03-02.csv"


def test_no_landing_folder_means_no_files(mesh_home: MeshSettings, stores: Contract) -> None:
    assert landing_files(mesh_home, stores) == []


# -- reading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_good_files_are_read_in_the_contract_schema(
    mesh_home: MeshSettings, order_lines: Contract, kind: str
) -> None:
    rows = order_rows(D1)
    file = land(mesh_home, order_lines, f"2025-03-01.{kind}", to_bytes(rows, kind))
    frame = read_landing_file(mesh_home, file, order_lines)
    assert frame.schema == order_lines.polars_schema
    assert_frame_equal(frame, enforce_schema(rows, order_lines))


def test_a_file_may_leave_out_optional_columns(mesh_home: MeshSettings, stores: Contract) -> None:
    rows = store_rows().drop("opened_date", "size_sqm")
    file = land(mesh_home, stores, "2025-03-01.csv", to_bytes(rows, "csv"))
    frame = read_landing_file(mesh_home, file, stores)
    assert frame.columns == stores.column_names
    assert frame["size_sqm"].null_count() == 2


def test_a_spreadsheets_semicolons_and_rs_na_read_as_separators_and_missing_values(
    mesh_home: MeshSettings, stores: Contract
) -> None:
    text = to_bytes(store_rows(), "csv").decode().replace(",", ";")
    text = text.replace(";850.0", ";NA")  # R's write.csv: a missing number is NA
    text = text.replace("Porto", "NA")  # a text may well be NA (Namibia, North America)
    file = land(mesh_home, stores, "2025-03-01.csv", text.encode())
    frame = read_landing_file(mesh_home, file, stores)
    assert frame.columns == stores.column_names and frame.height == 2
    assert frame["size_sqm"].to_list() == [None, 1200.5]
    assert frame["store_name"].to_list() == ["Harbour", "Old Town"]
    assert frame["city"].to_list() == ["NA", "Lisbon"]


def test_rs_utc_timestamps_load_as_their_instants(mesh_home: MeshSettings, make_contract) -> None:
    # readr::write_csv writes a POSIXct as "2013-01-01T10:00:00Z"
    contract = make_contract(
        [
            column("reading_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("time_hour", "timestamp", required=True),
        ],
        product="weather",
        write_mode="merge",
    )
    text = "reading_id,time_hour\n1,2013-01-01T10:00:00Z\n2,2013-01-01T11:00:00Z\n"
    file = land(mesh_home, contract, "2013-01-01.csv", text.encode())
    frame = read_landing_file(mesh_home, file, contract)
    assert frame["time_hour"].to_list() == [datetime(2013, 1, 1, 10), datetime(2013, 1, 1, 11)]


def _csv(text: str) -> bytes:
    return text.encode()


STORES_HEADER = "store_id,store_name,city,region\n"


@pytest.mark.parametrize(
    ("name", "data", "reasons"),
    [
        ("2025-03-01.parquet", b"PAR1 not really parquet", ["unreadable parquet file"]),
        ("2025-03-01.csv", b"", ["the file is empty"]),
        ("2025-03-01.parquet", b"", ["the file is empty"]),
        ("2025-03-01.csv", _csv(STORES_HEADER), ["the file has no rows"]),
        (
            "2025-03-01.csv",
            _csv("store_id,store_name,city,region,colour\n1,A,Porto,North,red\n"),
            ["columns not in the contract: colour"],
        ),
        (
            "2025-03-01.csv",
            _csv("store_id,store_name,city\n1,A,Porto\n"),
            ["missing required column(s) region"],
        ),
        (
            "2025-03-01.csv",
            _csv(STORES_HEADER + "1,A,Porto,North\nabc,B,Lisbon,South\n"),
            ["store_id", "abc"],
        ),
        (
            "2025-03-01.parquet",
            to_bytes(store_rows().with_columns(store_id=pl.Series(["1", "abc"])), "parquet"),
            ["store_id", "abc", "do not fit the contract types"],
        ),
        (
            "2025-03-01.csv",
            _csv(STORES_HEADER + "1,A,Porto,North\n,B,Lisbon,South\n"),
            ["1 row(s) with an empty primary key (store_id)"],
        ),
        ("2025-03-01.txt", _csv(STORES_HEADER + "1,A,Porto,North\n"), ["unsupported file type"]),
    ],
    ids=[
        "unreadable",
        "empty-csv",
        "empty-parquet",
        "header-only",
        "unknown-column",
        "missing-required",
        "wrong-type-csv",
        "wrong-type-parquet",
        "null-key",
        "unsupported",
    ],
)
def test_bad_files_are_rejected_with_a_clear_reason(
    mesh_home: MeshSettings, stores: Contract, name: str, data: bytes, reasons: list[str]
) -> None:
    file = land(mesh_home, stores, name, data)
    with pytest.raises(LandingError) as info:
        read_landing_file(mesh_home, file, stores)
    reason = str(info.value)
    for part in reasons:
        assert part in reason
    assert "\n" not in reason  # one line, fit for a reason file and the UI


def test_rows_of_another_day_than_the_files_are_rejected(
    mesh_home: MeshSettings, order_lines: Contract
) -> None:
    rows = pl.concat([order_rows(D1), order_rows(D2, first_order=10)])
    file = land(mesh_home, order_lines, "2025-03-01.parquet", to_bytes(rows, "parquet"))
    with pytest.raises(LandingError, match="3 row\\(s\\) with order_date other than the file's"):
        read_landing_file(mesh_home, file, order_lines)


# -- quarantine -------------------------------------------------------------------------------


def test_quarantine_moves_the_file_beside_its_reason(
    mesh_home: MeshSettings, stores: Contract
) -> None:
    file = land(mesh_home, stores, "2025-03-01.csv", b"broken")
    target = quarantine(mesh_home, stores, file, "it is broken")
    assert target == f"{mesh_home.quarantine_uri('sales')}/stores/2025-03-01.csv"
    assert not mesh_home.files.exists(file.uri)
    assert mesh_home.files.read_bytes(target) == b"broken"
    reason = json.loads(mesh_home.files.read_text(target + REASON_SUFFIX))
    assert reason["file"] == "2025-03-01.csv"
    assert reason["product"] == "sales/stores"
    assert reason["reason"] == "it is broken"
    assert reason["original_uri"] == file.uri
    assert landing_files(mesh_home, stores) == []


def test_quarantine_never_overwrites_an_earlier_reject(
    mesh_home: MeshSettings, stores: Contract
) -> None:
    first = quarantine(mesh_home, stores, land(mesh_home, stores, "a.csv", b"first"), "one")
    second = quarantine(mesh_home, stores, land(mesh_home, stores, "a.csv", b"second"), "two")
    assert first != second
    assert mesh_home.files.read_bytes(first) == b"first"
    assert mesh_home.files.read_bytes(second) == b"second"
    assert json.loads(mesh_home.files.read_text(first + REASON_SUFFIX))["reason"] == "one"
    assert json.loads(mesh_home.files.read_text(second + REASON_SUFFIX))["reason"] == "two"
    assert len(quarantined(mesh_home, stores)) == 4  # two files, two reasons


# -- loading ----------------------------------------------------------------------------------


def test_load_landing_keeps_good_files_flowing_past_a_bad_one(
    mesh_home: MeshSettings, order_lines: Contract
) -> None:
    land(mesh_home, order_lines, "2025-03-01.parquet", to_bytes(order_rows(D1), "parquet"))
    land(mesh_home, order_lines, "2025-03-01-late.csv", b"order_id,colour\n1,red\n")
    land(mesh_home, order_lines, "2025-03-02.csv", to_bytes(order_rows(D2, 10), "csv"))
    load = load_landing(mesh_home, order_lines)
    assert [f.name for f in load.loaded] == ["2025-03-01.parquet", "2025-03-02.csv"]
    assert list(load.quarantined) == ["2025-03-01-late.csv"]
    assert "colour" in load.quarantined["2025-03-01-late.csv"]
    assert load.frame.height == 6
    assert load.frame.schema == order_lines.polars_schema
    assert quarantined(mesh_home, order_lines) == [
        "2025-03-01-late.csv",
        "2025-03-01-late.csv" + REASON_SUFFIX,
    ]
    assert [f.name for f in landing_files(mesh_home, order_lines)] == [
        "2025-03-01.parquet",
        "2025-03-02.csv",
    ]


def test_when_every_file_is_quarantined_the_refusal_gives_the_reason_not_a_wait(
    mesh_home: MeshSettings, order_lines: Contract
) -> None:
    land(mesh_home, order_lines, "2025-03-01.csv", b"order_id,colour\n1,red\n")
    land(mesh_home, order_lines, "2025-03-02.csv", b"order_id,colour\n2,blue\n")
    refusal = load_landing(mesh_home, order_lines).refusal(order_lines, table_exists=False)
    assert refusal.startswith("sales/order_lines: nothing written, every landing file was")
    assert "2025-03-01.csv: " in refusal and "colour" in refusal and "1 more file(s)" in refusal
    assert "mesh landing list" in refusal and "run again once complete" not in refusal


def test_a_file_sent_twice_under_another_name_is_loaded_once(
    mesh_home: MeshSettings, order_lines: Contract
) -> None:
    day = to_bytes(order_rows(D1), "csv")
    land(mesh_home, order_lines, "2025-03-01.csv", day)
    land(mesh_home, order_lines, "2025-03-01-resend.csv", day)  # the same bytes again
    load = load_landing(mesh_home, order_lines)
    assert [f.name for f in load.loaded] == ["2025-03-01.csv"] and load.frame.height == 3
    assert load.replays == {"2025-03-01-resend.csv": "the same bytes as 2025-03-01.csv"}
    record_loaded(mesh_home, order_lines, load.loaded)
    again = load_landing(mesh_home, order_lines)  # a rebuild of the day reads both again
    assert again.frame.height == 3 and list(again.replays) == ["2025-03-01-resend.csv"]


def test_load_landing_in_a_window_and_with_nothing_landed(
    mesh_home: MeshSettings, order_lines: Contract
) -> None:
    empty = load_landing(mesh_home, order_lines)
    assert empty.frame.is_empty() and empty.frame.schema == order_lines.polars_schema
    land(mesh_home, order_lines, "2025-03-01.parquet", to_bytes(order_rows(D1), "parquet"))
    land(mesh_home, order_lines, "2025-03-02.parquet", to_bytes(order_rows(D2, 10), "parquet"))
    load = load_landing(mesh_home, order_lines, DateWindow(D2, D2))
    assert load.frame["order_date"].unique().to_list() == [D2]


def test_a_recorded_file_is_loaded_until_it_changes(
    mesh_home: MeshSettings, stores: Contract
) -> None:
    file = land(mesh_home, stores, "2025-03-01.csv", to_bytes(store_rows(), "csv"))
    assert not already_loaded(mesh_home, stores, file)
    record_loaded(mesh_home, stores, [file])
    assert already_loaded(mesh_home, stores, file)
    changed = land(mesh_home, stores, "2025-03-01.csv", to_bytes(store_rows().head(1), "csv"))
    assert changed.signature != file.signature
    assert not already_loaded(mesh_home, stores, changed)


# -- screening each file before anything is written ------------------------------------------


def quantity_at_least_one(contract: Contract, frame: pl.DataFrame) -> list[Violation]:
    """A screen as a product hands one down: order lines with a quantity below 1."""
    mask = pl.col("quantity") < 1
    rows = frame.select(mask.sum()).item()
    return [violation(contract, frame, "range", "quantity", mask, rows)] if rows else []


def with_mode(contract: Contract, mode: str) -> Contract:
    document = copy.deepcopy(contract.document)
    document["schema"][0]["customProperties"] = [{"property": "onViolation", "value": mode}]
    return Contract(document, "<order lines>")


def test_a_file_with_rows_breaking_the_screen_is_quarantined_with_keys_and_counts(
    mesh_home: MeshSettings, order_lines: Contract
) -> None:
    land(mesh_home, order_lines, "2025-03-01.parquet", to_bytes(order_rows(D1), "parquet"))
    bad = order_rows(D2, 10).with_columns(quantity=pl.Series([0, 2, -1]))
    land(mesh_home, order_lines, "2025-03-02.parquet", to_bytes(bad, "parquet"))
    load = load_landing(mesh_home, order_lines, screen=quantity_at_least_one)
    assert [f.name for f in load.loaded] == ["2025-03-01.parquet"]
    assert load.frame["order_date"].unique().to_list() == [D1]
    assert (
        "2 row(s) break blocking contract rules: range on quantity"
        in (load.quarantined["2025-03-02.parquet"])
    )
    folder = f"{mesh_home.quarantine_uri('sales')}/order_lines"
    reason = json.loads(mesh_home.files.read_text(f"{folder}/2025-03-02.parquet{REASON_SUFFIX}"))
    assert reason["violations"] == [
        {
            "rule": "range",
            "column": "quantity",
            "failing_rows": 2,
            "sample_keys": [
                {"order_id": 10, "line_number": 1},
                {"order_id": 12, "line_number": 1},
            ],
        }
    ]
    assert "e.g. [order_id=10, line_number=1; order_id=12, line_number=1]" in reason["reason"]


def test_quarantine_rows_sets_aside_only_the_breaking_rows_once_per_file_version(
    mesh_home: MeshSettings, order_lines: Contract
) -> None:
    contract = with_mode(order_lines, "quarantine_rows")
    bad = order_rows(D1).with_columns(quantity=pl.Series([0, 2, 3]))
    file = land(mesh_home, contract, "2025-03-01.parquet", to_bytes(bad, "parquet"))
    load = load_landing(mesh_home, contract, screen=quantity_at_least_one)
    assert load.loaded == [file] and load.quarantined == {}
    assert sorted(load.frame["order_id"]) == [2, 3]
    assert "1 row(s) break" in load.rows_quarantined["2025-03-01.parquet"]
    target = f"{mesh_home.quarantine_uri('sales')}/order_lines/2025-03-01.parquet.rows.parquet"
    assert pl.read_parquet(mesh_home.files.read_bytes(target))["order_id"].to_list() == [1]
    reason = json.loads(mesh_home.files.read_text(target + REASON_SUFFIX))
    assert reason["signature"] == file.signature and reason["quarantined_rows"] == 1
    load_landing(mesh_home, contract, screen=quantity_at_least_one)  # read again: no new copy
    assert len(quarantined(mesh_home, contract)) == 2


def test_quarantine_rows_sets_the_whole_file_aside_when_no_row_is_good(
    mesh_home: MeshSettings, order_lines: Contract
) -> None:
    contract = with_mode(order_lines, "quarantine_rows")
    bad = order_rows(D1).with_columns(quantity=pl.Series([0, 0, 0]))
    file = land(mesh_home, contract, "2025-03-01.parquet", to_bytes(bad, "parquet"))
    load = load_landing(mesh_home, contract, screen=quantity_at_least_one)
    assert load.loaded == [] and list(load.quarantined) == ["2025-03-01.parquet"]
    assert not mesh_home.files.exists(file.uri)


# -- stability: files are judged only once complete ------------------------------------------


def test_a_file_modified_within_the_minimum_age_is_left_for_later(
    tmp_path, stores: Contract
) -> None:
    settings = MeshSettings(home=str(tmp_path), landing_min_age=60)
    fresh = land(settings, stores, "2025-03-02.csv", b"store_id,store_name\n1,Harb")  # partial
    old = land(settings, stores, "2025-03-01.csv", to_bytes(store_rows(), "csv"))
    then = old.modified - 120
    os.utime(settings.files.path(old.uri), (then, then))
    assert set(unsettled(settings, stores, landing_files(settings, stores))) == {fresh.name}
    load = load_landing(settings, stores)
    assert [f.name for f in load.loaded] == ["2025-03-01.csv"]
    assert "less than 60 s ago" in load.unsettled["2025-03-02.csv"]
    assert load.quarantined == {}  # not judged: still in landing
    assert settings.files.exists(fresh.uri)


def test_with_markers_only_files_marked_done_are_judged(tmp_path, stores: Contract) -> None:
    settings = MeshSettings(home=str(tmp_path), landing_stable="marker", landing_min_age=0)
    land(settings, stores, "2025-03-01.csv", to_bytes(store_rows(), "csv"))
    land(settings, stores, "2025-03-02.csv", b"store_id,store_name\n1,Harb")
    load = load_landing(settings, stores)
    assert load.loaded == [] and set(load.unsettled) == {"2025-03-01.csv", "2025-03-02.csv"}
    settings.files.write_text(f"{settings.landing_uri('sales', 'stores')}/2025-03-01.csv.done", "")
    assert [f.name for f in landing_files(settings, stores)] == [
        "2025-03-01.csv",
        "2025-03-02.csv",
    ]  # a marker is not a landing file
    load = load_landing(settings, stores)
    assert [f.name for f in load.loaded] == ["2025-03-01.csv"]
    assert list(load.unsettled) == ["2025-03-02.csv"] and load.quarantined == {}


def test_a_corrected_version_of_a_file_sets_its_rows_aside_once_more_and_only_once(
    mesh_home: MeshSettings, order_lines: Contract
) -> None:
    contract = with_mode(order_lines, "quarantine_rows")
    first = order_rows(D1).with_columns(quantity=pl.Series([0, 2, 3]))
    land(mesh_home, contract, "2025-03-01.parquet", to_bytes(first, "parquet"))
    load_landing(mesh_home, contract, screen=quantity_at_least_one)
    second = order_rows(D1).with_columns(quantity=pl.Series([1, 0, 3]))
    land(mesh_home, contract, "2025-03-01.parquet", to_bytes(second, "parquet"))
    for _ in range(2):  # the second version, read twice
        load = load_landing(mesh_home, contract, screen=quantity_at_least_one)
        assert sorted(load.frame["order_id"]) == [1, 3]
    assert len(quarantined(mesh_home, contract)) == 4  # one copy (and reason) per version


def test_with_markers_a_file_rewritten_after_its_marker_waits_for_a_new_one(
    tmp_path, stores: Contract
) -> None:
    settings = MeshSettings(home=str(tmp_path), landing_stable="marker", landing_min_age=0)
    file = land(settings, stores, "2025-03-01.csv", to_bytes(store_rows(), "csv"))
    marker = file.uri + ".done"
    settings.files.write_text(marker, "")
    assert unsettled(settings, stores, [file]) == {}
    then = file.modified - 60
    os.utime(settings.files.path(marker), (then, then))  # the file changed after its marker
    assert list(unsettled(settings, stores, [file])) == ["2025-03-01.csv"]


@pytest.mark.parametrize(
    ("name", "day"),
    [
        ("2025-03-01.parquet", date(2025, 3, 1)),
        ("2025-03-01-late.csv", date(2025, 3, 1)),
        ("flights_2013-01-31.csv", date(2013, 1, 31)),
        ("sales-20150102.csv", date(2015, 1, 2)),
        ("export_2015_07_04_v2.csv", date(2015, 7, 4)),
        ("export.csv", None),
        ("batch_12345678.csv", None),  # not a date
        ("2025-02-30.csv", None),
        ("from_2025-03-01_to_2025-03-02.csv", None),  # two days: which one?
        ("2025-03-01_copy_2025-03-01.csv", date(2025, 3, 1)),
    ],
)
def test_a_file_carries_the_day_written_anywhere_in_its_name(name, day):
    assert file_day(name) == day
