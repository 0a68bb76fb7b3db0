"""Faults of the landing path that come from people, as real Dagster runs see them: a file
replayed under another name, a corrected late file, a corrected file of a merged product,
a retracted file, a quarantined file released after a fix. Each case asserts the table
converges to what its landing files say, with no duplicate and every contract check passed.

The fixtures stay in this file (tests/faults/conftest.py belongs to other fault cases)."""

from __future__ import annotations

import io
import os
import time
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from dagster_project import domain_definitions, landing
from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.landing import landing_files
from dagster_project.lake.lineage import (
    audit_entries,
    find_landing_file,
    find_quarantined,
    release,
    retract,
)
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import Lake
from tests.factories import column, contract_document

D1 = date(2025, 3, 1)


def _columns(partitioned: bool) -> list[dict]:
    return [
        column("event_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
        column("day", "date", required=True, **({"partitioned": True} if partitioned else {})),
        column("name", required=True),
    ]


class Shop:
    """A `shop` domain of two landed products, `events` (merged on its key) and `visits`
    (daily partitions), with its landing sensor and an instance that keeps the runs."""

    def __init__(self, root: Path, instance: dg.DagsterInstance):
        self.folder = folder = root / "shop" / "contracts"
        folder.mkdir(parents=True)
        self.contracts: dict[str, Contract] = {}
        for product, mode in [("events", "merge"), ("visits", "partition_overwrite")]:
            document = contract_document(
                _columns(mode != "merge"), product=product, write_mode=mode
            )
            path = folder / f"{product}.odcs.yaml"
            path.write_text(yaml.safe_dump(document, sort_keys=False))
            self.contracts[product] = Contract(document, str(path))
        self.defs = domain_definitions(
            "shop", [landing("events"), landing("visits")], contracts=folder
        )
        self.settings = MeshSettings(home=str(root / "mesh"))
        self.lake = Lake(self.settings)
        self.instance = instance
        self.cursor: str | None = None
        self.run_keys: dict[str, str] = {}  # product → the run key of its last request

    def land(self, product: str, name: str, ids: list[int], label: str = "v1") -> str:
        frame = pl.DataFrame({"event_id": ids, "day": [D1] * len(ids), "name": [label] * len(ids)})
        buffer = io.BytesIO()
        frame.write_csv(buffer)
        uri = f"{self.settings.landing_uri('shop', product)}/{name}"
        self.settings.files.write_bytes(uri, buffer.getvalue())
        return uri

    def tick(self) -> list[tuple[str, str | None]]:
        """Landing-sensor ticks until files have settled (a new file is judged on the tick
        after the one that first saw it): the (product, partition) of each run asked for."""
        sensor = self.defs.resolve_sensor_def("shop_landing_sensor")
        requested = []
        for _ in range(2):
            context = dg.build_sensor_context(
                cursor=self.cursor,
                resources={"mesh": MeshResource(home=self.settings.home)},
                instance=self.instance,
            )
            result = sensor(context)
            self.cursor = result.cursor
            for r in result.run_requests or []:
                self.run_keys[r.asset_selection[0].path[-1]] = r.run_key
            requested += [
                (r.asset_selection[0].path[-1], r.partition_key) for r in result.run_requests or []
            ]
        return sorted(requested)

    def materialize(
        self, product: str, succeed: bool = True, *, requested: bool = False
    ) -> dg.ExecuteInProcessResult:
        """A run of the product; `requested`: the run of its last request, as the daemon
        launches it (with its run key)."""
        asset = next(
            a
            for a in self.defs.assets or []
            if isinstance(a, dg.AssetsDefinition) and a.key == dg.AssetKey(["shop", product])
        )
        result = dg.materialize(
            [asset],
            partition_key=D1.isoformat() if product == "visits" else None,
            resources={"mesh": MeshResource(home=self.settings.home)},
            instance=self.instance,
            raise_on_error=False,
            tags={"dagster/run_key": self.run_keys[product]} if requested else None,
        )
        assert result.success == succeed
        failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
        assert not [c for c in failed if c.startswith("contract_")], failed
        return result

    def table(self, product: str) -> list[tuple[int, str]]:
        rows = self.lake.read(f"shop/{product}").sort("event_id")
        assert rows["event_id"].n_unique() == rows.height  # never a duplicate
        return rows.select("event_id", "name").rows()


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "mesh"))
    with dg.DagsterInstance.ephemeral() as instance:
        yield Shop(tmp_path, instance)


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    return result.get_asset_materialization_events()[0].materialization.metadata


def _unique_check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    return next(
        c for c in result.get_asset_check_evaluations() if c.check_name == "contract_unique"
    )


@pytest.mark.parametrize("product", ["events", "visits"])
def test_a_replay_under_another_name_asks_for_no_run_and_changes_nothing(
    shop: Shop, product: str
) -> None:
    shop.land(product, "2025-03-01.csv", [1, 2, 3])
    assert shop.tick() == [(product, "2025-03-01" if product == "visits" else None)]
    shop.materialize(product)
    version = shop.lake.info(f"shop/{product}").version
    shop.land(product, "2025-03-01-resent.csv", [1, 2, 3])
    assert shop.tick() == []  # the same bytes are loaded already
    assert shop.lake.info(f"shop/{product}").version == version
    run = shop.materialize(product)  # a manual run with both files: still right
    assert _unique_check(run).passed
    assert shop.table(product) == [(1, "v1"), (2, "v1"), (3, "v1")]


def test_a_corrected_late_file_of_a_day_passes_its_checks_and_can_be_corrected_again(
    shop: Shop,
) -> None:
    shop.land("visits", "2025-03-01.csv", [1, 2, 3])
    shop.tick()
    shop.materialize("visits")
    shop.land("visits", "2025-03-01-late.csv", [3, 4], "late")
    assert shop.tick() == [("visits", "2025-03-01")]
    run = shop.materialize("visits")
    assert _unique_check(run).passed and _metadata(run)["dagster/partition_row_count"].value == 4
    assert shop.table("visits") == [(1, "v1"), (2, "v1"), (3, "late"), (4, "late")]
    shop.land("visits", "2025-03-01-late.csv", [4], "late v2")  # same name, new bytes
    assert shop.tick() == [("visits", "2025-03-01")]
    shop.materialize("visits")
    assert shop.table("visits") == [(1, "v1"), (2, "v1"), (3, "v1"), (4, "late v2")]


def test_a_corrected_file_of_a_merged_product_replaces_exactly_its_rows(shop: Shop) -> None:
    shop.land("events", "a.csv", [1, 2, 3])
    shop.land("events", "b.csv", [4], "b")
    shop.tick()
    shop.materialize("events")
    shop.land("events", "a.csv", [1, 3], "fixed")  # 2 was never real
    assert shop.tick() == [("events", None)]
    run = shop.materialize("events")
    assert _metadata(run)["rows_retracted"].value == 1
    assert shop.table("events") == [(1, "fixed"), (3, "fixed"), (4, "b")]


@pytest.mark.parametrize("product", ["events", "visits"])
def test_a_retracted_file_takes_exactly_its_rows_and_later_runs_agree(
    shop: Shop, product: str
) -> None:
    shop.land(product, "2025-03-01.csv", [1, 2])
    shop.land(product, "2025-03-01-bad.csv", [3, 4], "bad")
    shop.tick()
    shop.materialize(product)
    contract = shop.contracts[product]
    (bad,) = [f for f in landing_files(shop.settings, contract) if "bad" in f.name]
    version = shop.lake.info(contract.key).version
    plan = retract(shop.lake, contract, bad, reason="test feed", principal="t", dry_run=True)
    assert plan.rows_removed == 2 and shop.lake.info(contract.key).version == version
    done = retract(shop.lake, contract, bad, reason="test feed", principal="cli:kim")
    assert done.rows_removed == 2 and shop.table(product) == [(1, "v1"), (2, "v1")]
    assert [e["action"] for e in audit_entries(shop.settings)] == ["retract"]
    assert shop.tick() == []
    shop.materialize(product)  # a later run reads what is left: the rows stay gone
    assert shop.table(product) == [(1, "v1"), (2, "v1")]


def test_a_quarantined_file_released_after_a_fix_is_judged_again_and_loads(shop: Shop) -> None:
    uri = shop.land("events", "a.csv", [1])
    shop.settings.files.write_text(uri, "event_id,day,name\nnot a number,2025-03-01,x\n")
    assert shop.tick() == []  # quarantined by the sensor
    item = find_quarantined(shop.settings, "shop/events/a.csv")
    assert "could not parse `not a number`" in item.reason
    shop.settings.files.write_text(item.uri, "event_id,day,name\n1,2025-03-01,fixed\n")
    assert release(shop.settings, item, principal="cli:kim") == uri
    assert shop.tick() == [("events", None)]
    shop.materialize("events")
    assert shop.table("events") == [(1, "fixed")]


def test_a_retraction_cut_short_after_the_table_write_converges_when_run_again(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.land("events", "a.csv", [1])
    shop.land("events", "b.csv", [2, 3], "b")
    shop.tick()
    shop.materialize("events")
    contract = shop.contracts["events"]
    (b,) = [f for f in landing_files(shop.settings, contract) if f.name == "b.csv"]

    def killed(*args: object) -> str:
        raise KeyboardInterrupt("killed while moving the file")

    with monkeypatch.context() as patched:
        patched.setattr("dagster_project.lake.lineage._move_out", killed)
        with pytest.raises(KeyboardInterrupt):
            retract(shop.lake, contract, b, reason="bad feed", principal="cli:kim")
    assert shop.table("events") == [(1, "v1")]  # the table went first
    done = retract(shop.lake, contract, b, reason="bad feed", principal="cli:kim")
    assert done.moved_to and shop.table("events") == [(1, "v1")]
    shop.materialize("events")
    assert shop.table("events") == [(1, "v1")]


def test_a_bad_correction_is_quarantined_and_the_rows_it_replaced_can_be_retracted(
    shop: Shop,
) -> None:
    shop.land("events", "a.csv", [1])
    uri = shop.land("events", "b.csv", [2, 3], "b")
    shop.tick()
    shop.materialize("events")
    shop.settings.files.write_text(uri, "event_id,day,name\n2,someday,b\n")  # a broken fix
    assert shop.tick() == []  # quarantined, the old rows stay
    assert shop.table("events") == [(1, "v1"), (2, "b"), (3, "b")]
    contracts = list(shop.contracts.values())
    contract, logged = find_landing_file(shop.settings, contracts, "shop/events/b.csv")
    done = retract(shop.lake, contract, logged, reason="feed withdrawn", principal="cli:kim")
    assert (done.rows_removed, done.moved_to) == (2, None)  # the reject stays in quarantine
    assert shop.table("events") == [(1, "v1")]
    assert find_quarantined(shop.settings, "b.csv").original == "b.csv"


def test_a_day_whose_only_file_is_quarantined_keeps_its_good_version(shop: Shop) -> None:
    """A partition overwrite does not rewrite a day with no good file left: a bad
    replacement of the day's only file is quarantined and the good version stays."""
    uri = shop.land("visits", "2025-03-01.csv", [1, 2])
    shop.tick()
    shop.materialize("visits")
    version = shop.lake.info("shop/visits").version
    shop.settings.files.write_text(uri, "event_id,day,name\n1,2025-03-01,\n")  # name required
    shop.tick()
    run = shop.materialize("visits")
    assert "not_null on name" in find_quarantined(shop.settings, "2025-03-01.csv").reason
    assert shop.lake.info("shop/visits").version == version  # nothing was written
    assert shop.table("visits") == [(1, "v1"), (2, "v1")]
    assert _metadata(run)["dagster/partition_row_count"].value == 2
    shop.land("visits", "2025-03-01.csv", [1, 2, 3], "v2")  # a good replacement loads
    shop.tick()
    shop.materialize("visits")
    assert shop.table("visits") == [(1, "v2"), (2, "v2"), (3, "v2")]


def _failure(result: dg.ExecuteInProcessResult) -> str:
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.error.to_string()


@pytest.mark.parametrize("product", ["events", "visits"])
def test_a_file_still_being_written_is_never_read_and_loads_once_complete(
    shop: Shop, product: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partial file: the merged product loads its other files without it; the daily one
    refuses to rewrite the day without it; neither quarantines it, and it loads complete."""
    first = shop.land(product, "2025-03-01.csv", [1, 2])
    os.utime(first, (time.time() - 7200, time.time() - 7200))  # landed two hours ago
    shop.tick()
    shop.materialize(product)
    version = shop.lake.info(f"shop/{product}").version
    partial = f"{shop.settings.landing_uri('shop', product)}/2025-03-01-late.csv"
    shop.settings.files.write_text(partial, "event_id,day,name\n3,2025-03-01,late\n4,2025-")
    monkeypatch.setenv("MESH_LANDING_MIN_AGE_SECONDS", "3600")  # just modified: being written
    assert shop.tick() == []
    run = shop.materialize(product, succeed=product == "events")  # a manual run meanwhile
    if product == "visits":  # the day is not rewritten without it
        assert "may still be being written" in _failure(run)
        assert shop.lake.info(f"shop/{product}").version == version
    assert shop.table(product) == [(1, "v1"), (2, "v1")]  # nothing of it visible
    shop.land(product, "2025-03-01-late.csv", [3, 4], "late")  # complete now
    monkeypatch.setenv("MESH_LANDING_MIN_AGE_SECONDS", "0")
    assert shop.tick() == [(product, "2025-03-01" if product == "visits" else None)]
    shop.materialize(product)
    assert shop.table(product) == [(1, "v1"), (2, "v1"), (3, "late"), (4, "late")]


@pytest.mark.parametrize("product", ["events", "visits"])
def test_a_run_dying_between_its_commit_and_its_load_record_converges(
    shop: Shop, product: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the Delta commit, before the load record (the last step of a run):
    the file is asked for again, the rerun adds no duplicate, and a later correction of
    the file still takes back exactly its rows."""
    shop.land(product, "2025-03-01.csv", [1, 2])
    partition = [(product, "2025-03-01" if product == "visits" else None)]
    assert shop.tick() == partition

    def killed(*args: object) -> None:
        raise RuntimeError("killed before the load record")

    with monkeypatch.context() as patched:
        patched.setattr("dagster_project.products.builder.record_load", killed)
        assert "killed" in _failure(shop.materialize(product, False, requested=True))
    assert shop.table(product) == [(1, "v1"), (2, "v1")]  # committed, never recorded
    assert shop.tick() == partition  # its run failed: asked for again, no operator
    shop.materialize(product, requested=True)
    assert shop.table(product) == [(1, "v1"), (2, "v1")]
    assert shop.tick() == []  # loaded: asked for no more
    shop.land(product, "2025-03-01.csv", [1], "fixed")
    assert shop.tick() == partition
    shop.materialize(product)
    assert shop.table(product) == [(1, "fixed")]
