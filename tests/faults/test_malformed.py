"""Fault cases: malformed landing files of every kind, loaded by a real materialization.

Whatever the file — wrong types, out-of-range values, values outside an enum, nulls in
a required column, a CSV, JSON-lines or Parquet file cut short, an empty file — no row
of it that breaks a blocking rule is readable in the product at any moment (every Delta
version is read back), the good files load, and the quarantine holds the file (or, with
`onViolation: quarantine_rows`, its breaking rows) beside a reason.
"""

from __future__ import annotations

import io
import json
from typing import Any

import dagster as dg
import polars as pl
import pytest

from dagster_project.assembly.locations import product_assets
from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import Lake
from dagster_project.products.product import Product
from tests.factories import column, contract_document

KEY = "shop/widgets"
PROPERTIES = [
    column("widget_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
    column("widget_name", required=True),
    column("colour", enum=[{"value": "red"}, {"value": "blue"}]),
    column("weight", "number", logicalTypeOptions={"minimum": 0, "maximum": 100}),
]
HEADER = "widget_id,widget_name,colour,weight\n"
GOOD = HEADER + "1,bolt,red,1.5\n2,nut,blue,0.5\n"
GOOD_IDS = [1, 2]
FINE_ROW = "30,hub,red,3.0\n"  # a good row inside a malformed file
BAD_IDS = set(range(20, 30))  # rows that must never be visible


def parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


GOOD_PARQUET = parquet(
    pl.DataFrame({"widget_id": [21, 30], "widget_name": ["gear", "hub"], "weight": [1.0, 2.0]})
)

# kind → (file name, content, judged row by row: its good rows may load)
MALFORMED: dict[str, tuple[str, bytes, bool]] = {
    "out-of-range": ("b.csv", (HEADER + "21,gear,red,250\n22,cog,red,-1\n" + FINE_ROW), True),
    "bad-accepted-value": ("b.csv", (HEADER + "21,gear,green,1.0\n" + FINE_ROW), True),
    "null-in-required": ("b.csv", (HEADER + "21,,red,1.0\n" + FINE_ROW), True),
    "every-rule-at-once": (
        "b.jsonl",
        '{"widget_id": 21, "widget_name": null}\n'
        '{"widget_id": 22, "widget_name": "cog", "colour": "pink", "weight": 1000}\n'
        '{"widget_id": 30, "widget_name": "hub", "weight": 3.0}\n',
        True,
    ),
    "wrong-type-csv": ("b.csv", (HEADER + "21,gear,red,heavy\n" + FINE_ROW), False),
    "wrong-type-parquet": (
        "b.parquet",
        parquet(pl.DataFrame({"widget_id": ["21", "x"], "widget_name": ["gear", "hub"]})),
        False,
    ),
    "truncated-csv": ("b.csv", (HEADER + FINE_ROW + "21,ge"), False),
    "truncated-jsonl": (
        "b.jsonl",
        '{"widget_id": 30, "widget_name": "hub"}\n{"widget_id": 2',
        False,
    ),
    "truncated-parquet": ("b.parquet", GOOD_PARQUET[: len(GOOD_PARQUET) // 2], False),
    "empty-file": ("b.csv", "", False),
    "header-only": ("b.csv", HEADER, False),
    "unknown-column": ("b.csv", "widget_id,widget_name,size\n21,gear,XL\n", False),
    "null-key": ("b.csv", (HEADER + ",gear,red,1.0\n" + FINE_ROW), False),
    "unsupported-type": ("b.xlsx", (HEADER + FINE_ROW), False),
    "no-suffix": ("b", (HEADER + FINE_ROW), False),
    "garbage-parquet": ("b.parquet", b"PAR1" + bytes(range(256)) * 4 + b"PAR1", False),
    "invalid-json-line": (
        "b.jsonl",
        '{"widget_id": 30, "widget_name": "hub"}\n{widget_id: 21,}\n'
        '{"widget_id": 22, "widget_name": "cog"}\n',
        False,
    ),
    "missing-required-column": ("b.csv", "widget_id,colour\n21,red\n", False),
    "not-utf8-csv": ("b.csv", HEADER.encode() + b"21,\xff\xfe\x00gear,red,1.0\n", False),
    "duplicate-header": ("b.csv", "widget_id,widget_id,widget_name\n21,22,gear\n", False),
}


def widgets(on_violation: str) -> Contract:
    document = contract_document(PROPERTIES)
    document["schema"][0]["customProperties"] = [{"property": "onViolation", "value": on_violation}]
    return Contract(document, "<widgets>")


def land(settings: MeshSettings, name: str, content: str | bytes) -> str:
    uri = f"{settings.landing_uri('shop', 'widgets')}/{name}"
    data = content.encode() if isinstance(content, str) else content
    settings.files.write_bytes(uri, data)
    return uri


def run(settings: MeshSettings, contract: Contract) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        product_assets([Product("widgets", contract=contract)]),
        resources={"mesh": MeshResource(home=settings.home)},
    )


def every_version(settings: MeshSettings) -> list[pl.DataFrame]:
    """The product as it was at each Delta version: what any reader could ever have seen."""
    uri = settings.table_uri("shop", "widgets")
    latest = Lake(settings).table(KEY).version()
    return [pl.read_delta(uri, version=v) for v in range(latest + 1)]


def quarantine(settings: MeshSettings) -> dict[str, Any]:
    """Reason files in the product's quarantine, by the name of what they explain."""
    folder = f"{settings.quarantine_uri('shop')}/widgets"
    return {
        uri.rsplit("/", 1)[-1].removesuffix(".reason.json"): json.loads(
            settings.files.read_text(uri)
        )
        for uri in settings.files.list_files(folder)
        if uri.endswith(".reason.json")
    }


@pytest.mark.parametrize("on_violation", ["quarantine_file", "quarantine_rows"])
@pytest.mark.parametrize("kind", list(MALFORMED))
def test_no_row_of_a_malformed_file_is_ever_visible(
    mesh_home: MeshSettings, kind: str, on_violation: str
) -> None:
    name, content, row_level = MALFORMED[kind]
    land(mesh_home, "a.csv", GOOD)
    bad = land(mesh_home, name, content)
    result = run(mesh_home, widgets(on_violation))
    assert result.success

    versions = every_version(mesh_home)
    for table in versions:
        assert not BAD_IDS & set(table["widget_id"]), kind
    partial = row_level and on_violation == "quarantine_rows"
    assert sorted(versions[-1]["widget_id"]) == GOOD_IDS + ([30] if partial else [])

    reasons = quarantine(mesh_home)
    if partial:
        assert mesh_home.files.exists(bad)  # its good rows loaded; it stays
        assert list(reasons) == [name + ".rows.parquet"]
        assert reasons[name + ".rows.parquet"]["violations"]
    else:
        assert not mesh_home.files.exists(bad)
        assert list(reasons) == [name]
        assert reasons[name]["reason"]
        if row_level:  # each broken rule with its failing rows and sample keys
            rules = {v["rule"] for v in reasons[name]["violations"]}
            assert rules and all(v["sample_keys"] for v in reasons[name]["violations"])
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert all(checks[f"contract_{r}"] for r in ("not_null", "accepted_values", "range"))


def test_a_later_run_after_a_malformed_file_loads_new_files(mesh_home: MeshSettings) -> None:
    """One bad file of a merge product must not break every later run."""
    contract = widgets("quarantine_file")
    land(mesh_home, "a.csv", GOOD)
    for kind in ("out-of-range", "truncated-csv", "empty-file"):
        name, content, _ = MALFORMED[kind]
        land(mesh_home, f"{kind}-{name}", content)
    assert run(mesh_home, contract).success
    assert len(quarantine(mesh_home)) == 3
    land(mesh_home, "c.csv", HEADER + "3,washer,blue,0.1\n")
    later = run(mesh_home, contract)
    assert later.success
    assert sorted(Lake(mesh_home).read(KEY)["widget_id"]) == [1, 2, 3]
    assert len(quarantine(mesh_home)) == 3  # nothing judged twice
    assert all(
        e.passed
        for e in later.get_asset_check_evaluations()
        if e.check_name.startswith("contract_")
    )


MAKERS = "makers.odcs.yaml#/schema/makers/properties/maker_id"


def made_widgets(on_violation: str, tolerated: float) -> Contract:
    """widgets whose `maker_id` references shop/makers, tolerating a share of orphans."""
    tolerance = [{"property": "maxOrphanShare", "value": tolerated}]
    maker = column(
        "maker_id", "integer", relationships=[{"to": MAKERS, "customProperties": tolerance}]
    )
    document = contract_document([*PROPERTIES[:2], maker])
    document["schema"][0]["customProperties"] = [{"property": "onViolation", "value": on_violation}]
    return Contract(document, "<widgets>")


@pytest.mark.parametrize("on_violation", ["quarantine_file", "quarantine_rows"])
def test_rows_referencing_a_missing_parent_beyond_tolerance_are_never_visible(
    mesh_home: MeshSettings, on_violation: str
) -> None:
    makers = Contract(
        contract_document(
            [column("maker_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True)],
            product="makers",
        ),
        "<makers>",
    )
    Lake(mesh_home).write(makers, pl.DataFrame({"maker_id": [1, 2]}))
    header = "widget_id,widget_name,maker_id\n"
    land(mesh_home, "a.csv", header + "1,bolt,1\n2,nut,2\n3,gear,\n")  # no maker: not an orphan
    land(mesh_home, "b.csv", header + "30,hub,1\n21,cog,7\n22,axle,8\n23,pin,8\n")  # 3 of 4
    land(mesh_home, "c.csv", header + "4,washer,1\n5,rivet,1\n6,clip,2\n24,spring,9\n")  # 1 of 4
    result = run(mesh_home, made_widgets(on_violation, 0.25))
    assert result.success
    for table in every_version(mesh_home):
        assert not {21, 22, 23} & set(table["widget_id"])
    rows_aside = on_violation == "quarantine_rows"
    expected = [1, 2, 3, 4, 5, 6, 24] + ([30] if rows_aside else [])
    assert sorted(Lake(mesh_home).read(KEY)["widget_id"]) == expected  # c.csv: tolerated
    (name,) = quarantine(mesh_home)
    assert name == ("b.csv.rows.parquet" if rows_aside else "b.csv")
    (found,) = quarantine(mesh_home)[name]["violations"]
    assert (found["rule"], found["failing_rows"]) == ("referential_integrity", 3)
    assert found["sample_keys"] == [{"widget_id": 21}, {"widget_id": 22}, {"widget_id": 23}]
    assert "2 value(s) missing in shop/makers on 3 of 4 rows" in found["detail"]
    if rows_aside:
        aside = pl.read_parquet(f"{mesh_home.quarantine_uri('shop')}/widgets/{name}")
        assert sorted(aside["widget_id"]) == [21, 22, 23]
    (check,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "contract_referential_integrity"
    ]
    assert check.passed and "on 1 of" in str(check.metadata["details"].value)  # reported


def test_two_thousand_files_at_once_load_in_one_run_and_every_bad_one_is_set_aside(
    mesh_home: MeshSettings,
) -> None:
    """A burst: 2,000 files (every 100th malformed, every 50th a replay of another's
    bytes under a new name) loaded by one run: every good row once, no bad row."""
    bad_kinds = [k for k, (name, _, _) in MALFORMED.items() if name.endswith(".csv")]
    good_ids, bad_files = [], 0
    for i in range(2000):
        if i % 100 == 99:
            _, content, _ = MALFORMED[bad_kinds[(i // 100) % len(bad_kinds)]]
            land(mesh_home, f"{i:04d}.csv", content)
            bad_files += 1
        elif i % 50 == 49:
            land(mesh_home, f"{i:04d}-resent.csv", HEADER + f"{1000 + i - 1},x,red,1.0\n")
        else:
            land(mesh_home, f"{i:04d}.csv", HEADER + f"{1000 + i},x,red,1.0\n")
            good_ids.append(1000 + i)
    result = run(mesh_home, widgets("quarantine_file"))
    assert result.success
    rows = Lake(mesh_home).read(KEY)
    assert rows["widget_id"].n_unique() == rows.height  # no duplicate
    assert sorted(rows["widget_id"]) == good_ids and not BAD_IDS & set(rows["widget_id"])
    assert len(quarantine(mesh_home)) == bad_files
