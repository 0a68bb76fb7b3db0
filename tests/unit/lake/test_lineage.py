"""Rows know their landing file: replays are no-ops, a corrected file replaces its rows, a
retracted file takes its rows back (audited), a quarantined file can be released."""

from __future__ import annotations

import io
import json
import os
from datetime import date

import polars as pl
import pytest

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.landing import (
    LandingFile,
    already_loaded,
    landing_files,
    load_landing,
    load_record,
    quarantine,
)
from dagster_project.lake.lineage import (
    LineageError,
    audit_entries,
    find_landing_file,
    find_quarantined,
    logged_keys,
    quarantined,
    record_load,
    release,
    retract,
    retracted_keys,
)
from dagster_project.lake.storage import DateWindow, Lake
from tests.factories import column

D1, D2 = date(2025, 3, 1), date(2025, 3, 2)


def _columns(partitioned: bool) -> list[dict]:
    return [
        column("event_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
        column("day", "date", required=True, **({"partitioned": True} if partitioned else {})),
        column("name", required=True),
    ]


@pytest.fixture
def merged(make_contract) -> Contract:
    return make_contract(_columns(False), product="events", write_mode="merge")


@pytest.fixture
def daily(make_contract) -> Contract:
    return make_contract(_columns(True), product="visits", write_mode="partition_overwrite")


def rows(ids: list[int], day: date = D1, name: str = "v1") -> bytes:
    frame = pl.DataFrame({"event_id": ids, "day": [day] * len(ids), "name": [name] * len(ids)})
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    return buffer.getvalue()


def land(settings: MeshSettings, contract: Contract, name: str, data: bytes) -> LandingFile:
    uri = f"{settings.landing_uri(contract.domain, contract.product)}/{name}"
    settings.files.write_bytes(uri, data)
    return next(f for f in landing_files(settings, contract) if f.name == name)


def run(lake: Lake, contract: Contract, day: date | None = None) -> None:
    """What a product's run does with its landing files (products.builder)."""
    window = DateWindow(day, day) if day else None
    load = load_landing(lake.settings, contract, window)
    retracted = retracted_keys(lake.settings, contract, load)
    lake.write(contract, load.frame, window=window, retract=retracted)
    record_load(lake.settings, contract, load)


def table(lake: Lake, contract: Contract) -> list[tuple]:
    return lake.read(contract.key).sort("event_id").select("event_id", "name").rows()


# -- replays ------------------------------------------------------------------------------------
def test_the_same_bytes_under_another_name_are_already_loaded(lake: Lake, merged: Contract) -> None:
    land(lake.settings, merged, "a.csv", rows([1, 2]))
    run(lake, merged)
    copy = land(lake.settings, merged, "a-copy.csv", rows([1, 2]))
    assert already_loaded(lake.settings, merged, copy)
    assert load_record(lake.settings, merged, "a-copy.csv")["replay_of"] == "a.csv"
    other = land(lake.settings, merged, "b.csv", rows([1, 2], name="v2"))
    assert not already_loaded(lake.settings, merged, other)


def test_a_touched_file_is_loaded_but_a_corrected_one_is_not(lake: Lake, merged: Contract) -> None:
    file = land(lake.settings, merged, "a.csv", rows([1, 2]))
    run(lake, merged)
    os.utime(lake.settings.files.path(file.uri), (1, 1))  # same bytes, another mtime
    touched = landing_files(lake.settings, merged)[0]
    assert touched.signature != file.signature
    assert already_loaded(lake.settings, merged, touched)
    corrected = land(lake.settings, merged, "a.csv", rows([1]))
    assert not already_loaded(lake.settings, merged, corrected)


def test_a_replay_under_another_name_may_not_make_a_correction_a_no_op(
    lake: Lake, merged: Contract
) -> None:
    land(lake.settings, merged, "a.csv", rows([1, 2]))
    land(lake.settings, merged, "b.csv", rows([3]))
    run(lake, merged)
    b_now_as_a = land(lake.settings, merged, "a.csv", rows([3]))  # a's name, b's bytes
    assert not already_loaded(lake.settings, merged, b_now_as_a)


# -- the load log and corrections -------------------------------------------------------------
def test_each_loaded_file_logs_the_keys_it_brought(lake: Lake, daily: Contract) -> None:
    land(lake.settings, daily, "2025-03-01.csv", rows([1, 2]))
    land(lake.settings, daily, "2025-03-01-late.csv", rows([2, 3]))
    run(lake, daily, D1)
    late = logged_keys(lake.settings, daily, "2025-03-01-late.csv")
    assert late.sort("event_id").rows() == [(2, D1), (3, D1)]
    assert load_record(lake.settings, daily, "2025-03-01.csv")["sha256"]


def test_a_file_loaded_before_the_log_existed_is_logged_on_its_next_load(
    lake: Lake, merged: Contract
) -> None:
    file = land(lake.settings, merged, "a.csv", rows([1, 2]))
    run(lake, merged)
    record = lake.settings.registry_uri("loaded", "shop", "events", "a.csv.json")
    lake.settings.files.write_text(
        record, json.dumps({"uri": file.uri, "signature": file.signature})
    )
    lake.settings.files.delete(
        lake.settings.registry_uri("lineage", "shop", "events", "a.csv.keys.parquet")
    )
    run(lake, merged)
    assert logged_keys(lake.settings, merged, "a.csv")["event_id"].sort().to_list() == [1, 2]
    land(lake.settings, merged, "a.csv", rows([1]))
    run(lake, merged)  # so its correction deletes what it no longer brings
    assert table(lake, merged) == [(1, "v1")]


def test_a_corrected_merged_file_deletes_the_rows_it_no_longer_brings(
    lake: Lake, merged: Contract
) -> None:
    land(lake.settings, merged, "a.csv", rows([1, 2, 3]))
    land(lake.settings, merged, "b.csv", rows([3, 4], name="b"))
    run(lake, merged)
    land(lake.settings, merged, "a.csv", rows([1, 3], name="v2"))  # 2 dropped, 1 and 3 fixed
    run(lake, merged)
    # 3 is still b's (the later file), 2 is gone, 1 is corrected
    assert table(lake, merged) == [(1, "v2"), (3, "b"), (4, "b")]


def test_a_corrected_daily_file_replaces_its_days_rows(lake: Lake, daily: Contract) -> None:
    land(lake.settings, daily, "2025-03-01.csv", rows([1, 2, 3]))
    land(lake.settings, daily, "2025-03-02.csv", rows([7], day=D2))
    run(lake, daily, D1)
    run(lake, daily, D2)
    land(lake.settings, daily, "2025-03-01.csv", rows([1, 2], name="v2"))
    run(lake, daily, D1)
    assert table(lake, daily) == [(1, "v2"), (2, "v2"), (7, "v1")]
    assert logged_keys(lake.settings, daily, "2025-03-01.csv")["event_id"].sort().to_list() == [
        1,
        2,
    ]


# -- retraction -------------------------------------------------------------------------------
def test_a_dry_run_says_what_would_go_and_changes_nothing(lake: Lake, merged: Contract) -> None:
    land(lake.settings, merged, "a.csv", rows([1, 2]))
    file = land(lake.settings, merged, "b.csv", rows([3, 4], name="b"))
    run(lake, merged)
    version = lake.info(merged.key).version
    plan = retract(lake, merged, file, reason="wrong feed", principal="cli:kim", dry_run=True)
    assert (plan.rows_removed, plan.rows_restored, plan.dry_run) == (2, 0, True)
    assert lake.info(merged.key).version == version
    assert lake.settings.files.exists(file.uri) and audit_entries(lake.settings) == []


def test_retract_removes_exactly_the_files_rows_and_audits_it(lake: Lake, merged: Contract) -> None:
    land(lake.settings, merged, "a.csv", rows([1, 2]))
    file = land(lake.settings, merged, "b.csv", rows([3, 4], name="b"))
    run(lake, merged)
    done = retract(lake, merged, file, reason="wrong feed", principal="cli:kim")
    assert done.rows_removed == 2 and table(lake, merged) == [(1, "v1"), (2, "v1")]
    assert not lake.settings.files.exists(file.uri)
    assert lake.settings.files.exists(done.moved_to) and "/retracted/" in done.moved_to
    (entry,) = audit_entries(lake.settings)
    assert entry["action"] == "retract" and entry["principal"] == "cli:kim"
    assert (entry["reason"], entry["rows_removed"], entry["file"]) == ("wrong feed", 2, "b.csv")
    run(lake, merged)  # the next run does not bring them back
    assert table(lake, merged) == [(1, "v1"), (2, "v1")]
    again = land(lake.settings, merged, "b.csv", rows([3, 4], name="b"))
    assert not already_loaded(lake.settings, merged, again)  # landing it again loads it again


def test_retract_puts_back_the_row_another_file_also_brings(lake: Lake, daily: Contract) -> None:
    land(lake.settings, daily, "2025-03-01.csv", rows([1, 2], name="first"))
    late = land(lake.settings, daily, "2025-03-01-late.csv", rows([2, 3], name="late"))
    land(lake.settings, daily, "2025-03-02.csv", rows([3], day=D2, name="other day"))
    run(lake, daily, D1)
    run(lake, daily, D2)
    done = retract(lake, daily, late, reason="sent twice", principal="cli:kim")
    assert (done.rows_removed, done.rows_restored) == (1, 1)
    assert done.kept_by == ["2025-03-01.csv"]
    assert table(lake, daily) == [(1, "first"), (2, "first"), (3, "other day")]


def test_a_file_that_was_never_loaded_is_moved_out_with_nothing_removed(
    lake: Lake, merged: Contract
) -> None:
    land(lake.settings, merged, "a.csv", rows([1]))
    run(lake, merged)
    file = land(lake.settings, merged, "b.csv", rows([5]))
    done = retract(lake, merged, file, reason="not ours", principal="cli:kim")
    assert done.rows_removed == 0 and not lake.settings.files.exists(file.uri)


def test_a_file_deleted_by_hand_is_retracted_from_the_load_log(
    lake: Lake, merged: Contract
) -> None:
    land(lake.settings, merged, "a.csv", rows([1]))
    file = land(lake.settings, merged, "b.csv", rows([2, 3], name="b"))
    run(lake, merged)
    lake.settings.files.delete(file.uri)
    run(lake, merged)  # deleting a file takes nothing back by itself
    assert table(lake, merged) == [(1, "v1"), (2, "b"), (3, "b")]
    contract, logged = find_landing_file(lake.settings, [merged], "b.csv")
    done = retract(lake, contract, logged, reason="deleted upstream", principal="cli:kim")
    assert (done.rows_removed, done.moved_to) == (2, None)
    assert table(lake, merged) == [(1, "v1")]
    with pytest.raises(LineageError, match=r"no landing file b.csv"):
        find_landing_file(lake.settings, [merged], "b.csv")  # retracted: forgotten


# -- naming files -----------------------------------------------------------------------------
def test_a_file_is_found_by_name_or_path_and_mistakes_say_what_to_type(
    lake: Lake, merged: Contract, daily: Contract
) -> None:
    land(lake.settings, merged, "2025-03-01.csv", rows([1]))
    land(lake.settings, daily, "2025-03-01.csv", rows([1]))
    contracts = [merged, daily]
    contract, file = find_landing_file(lake.settings, contracts, "shop/visits/2025-03-01.csv")
    assert contract.key == "shop/visits" and file.name == "2025-03-01.csv"
    path = lake.settings.files.path(file.uri)
    assert find_landing_file(lake.settings, contracts, path)[0].key == "shop/visits"
    with pytest.raises(LineageError, match=r"several products .* DOMAIN/PRODUCT/2025-03-01.csv"):
        find_landing_file(lake.settings, contracts, "2025-03-01.csv")
    with pytest.raises(LineageError, match=r"no landing file nope.csv: landed files are in"):
        find_landing_file(lake.settings, contracts, "nope.csv")


# -- quarantine -------------------------------------------------------------------------------
def test_quarantined_files_are_listed_with_reasons_and_released_after_a_fix(
    lake: Lake, merged: Contract
) -> None:
    settings = lake.settings
    bad = land(settings, merged, "a.csv", b"event_id,day,name\nx,2025-03-01,v1\n")
    quarantine(settings, merged, bad, "values do not fit the contract types")
    (item,) = quarantined(settings)
    assert (item.product, item.original) == ("shop/events", "a.csv")
    assert item.reason == "values do not fit the contract types"
    with pytest.raises(LineageError, match=r"quarantined .* `mesh landing list`"):
        find_landing_file(settings, [merged], "a.csv")
    settings.files.write_bytes(item.uri, rows([1]))  # fixed where it lies
    target = release(settings, find_quarantined(settings, "a.csv"), principal="cli:kim")
    assert target == bad.uri and quarantined(settings) == []
    run(lake, merged)  # judged again: it loads now
    assert table(lake, merged) == [(1, "v1")]
    assert [e["action"] for e in audit_entries(settings)] == ["release"]


def test_release_never_overwrites_a_landed_file(lake: Lake, merged: Contract) -> None:
    settings = lake.settings
    quarantine(settings, merged, land(settings, merged, "a.csv", b""), "the file is empty")
    land(settings, merged, "a.csv", rows([1]))
    with pytest.raises(LineageError, match="in landing for shop/events already: retract it"):
        release(settings, find_quarantined(settings, "a.csv"), principal="cli:kim")
    with pytest.raises(LineageError, match=r"no quarantined file b.csv"):
        find_quarantined(settings, "b.csv")
    reason = json.loads(settings.files.read_text(quarantined(settings)[0].uri + ".reason.json"))
    assert reason["reason"] == "the file is empty"
