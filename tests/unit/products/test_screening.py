"""Screening before the write: no row breaking a blocking contract rule is ever written.

A landing file with such rows is quarantined (the file, or only those rows with
`onViolation: quarantine_rows`) while the product's other files load; a derived product
whose transform yields such rows fails before its write. The screen and the check after
the write evaluate the same rule expressions.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import dagster as dg
import polars as pl
import pytest

from dagster_project.assembly.locations import product_assets
from dagster_project.checks.rules import ContractRules, evaluate_rules, rules_for
from dagster_project.core.contracts import Contract, ContractError
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import Lake
from dagster_project.products.product import CheckFamily, Product, screen_of
from tests.factories import column, contract_document

WIDGETS = [
    column("widget_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
    column("widget_name", required=True),
    column("colour", enum=[{"value": "red"}, {"value": "blue"}]),
    column("weight", "number", logicalTypeOptions={"minimum": 0, "maximum": 100}),
]
UNUSED = Lake(MeshSettings(home="/unused"))  # a lake the contracts without relationships never read
GOOD_CSV = "widget_id,widget_name,colour,weight\n1,bolt,red,1.5\n2,nut,blue,0.5\n"
# Row 11 breaks accepted_values, 12 range, 13 not_null; 14 is fine.
BAD_CSV = (
    "widget_id,widget_name,colour,weight\n"
    "11,gear,green,2.0\n12,cog,red,250\n13,,blue,1.0\n14,axle,red,3.0\n"
)


def widgets(
    properties: list[dict[str, Any]] = WIDGETS, on_violation: str | None = None, **options: Any
) -> Contract:
    document = contract_document(properties, **options)
    if on_violation:
        document["schema"][0]["customProperties"] = [
            {"property": "onViolation", "value": on_violation}
        ]
    return Contract(document, "<widgets>")


def warning_on(name: str, metric: str) -> list[dict[str, Any]]:
    """WIDGETS with the rules of `metric` on column `name` only warning."""
    quality = [{"type": "library", "metric": metric, "mustBe": 0, "severity": "warning"}]
    return [{**c, "quality": quality} if c["name"] == name else c for c in WIDGETS]


def frame(contract: Contract, csv: str) -> pl.DataFrame:
    return pl.read_csv(csv.encode(), schema_overrides=contract.polars_schema)


# -- the screen ---------------------------------------------------------------------------------


def test_the_screen_names_each_broken_rule_with_its_rows_and_sample_keys() -> None:
    contract = widgets()
    found = ContractRules().screen(contract, frame(contract, BAD_CSV), UNUSED)
    assert [(v.rule, v.column, v.rows, v.sample_keys) for v in found] == [
        ("not_null", "widget_name", 1, [{"widget_id": 13}]),
        ("accepted_values", "colour", 1, [{"widget_id": 11}]),
        ("range", "weight", 1, [{"widget_id": 12}]),
    ]
    assert ContractRules().screen(contract, frame(contract, GOOD_CSV), UNUSED) == []


def test_sample_keys_are_at_most_five_and_row_numbers_without_a_primary_key() -> None:
    keyless = widgets([{**c, "primaryKey": False} for c in WIDGETS], write_mode="append")
    rows = pl.DataFrame({"widget_id": range(10), "widget_name": ["x"] * 10, "weight": [-1.0] * 10})
    (found,) = ContractRules().screen(keyless, rows, UNUSED)
    assert found.rows == 10
    assert found.sample_keys == [{"row": n} for n in range(1, 6)]


def test_the_screen_counts_exactly_what_the_check_after_the_write_counts() -> None:
    contract = widgets(write_mode="append")  # uniqueness of the frame, no table to read
    rows = frame(contract, BAD_CSV + "15,,purple,-4\n16,hub,,\n")
    screened = {(v.rule, v.column): v.rows for v in ContractRules().screen(contract, rows, UNUSED)}
    outcomes = evaluate_rules(contract, rows, UNUSED)
    checked = {
        (o.rule, col): n
        for o in outcomes
        for col, n in o.failures.items()
        if n and o.rule in {"not_null", "accepted_values", "range"}
    }
    assert (
        screened
        == checked
        == {
            ("not_null", "widget_name"): 2,
            ("accepted_values", "colour"): 2,
            ("range", "weight"): 2,
        }
    )


def test_a_rule_the_contract_marks_warning_is_reported_not_screened() -> None:
    contract = widgets(warning_on("weight", "invalidValues"), write_mode="append")
    rows = frame(contract, BAD_CSV)
    assert {v.rule for v in ContractRules().screen(contract, rows, UNUSED)} == {
        "not_null",
        "accepted_values",
    }
    outcomes = evaluate_rules(contract, rows, UNUSED)
    outcome = next(o for o in outcomes if o.rule == "range")
    assert not outcome.passed and outcome.warn_only  # a WARN, not a blocking failure
    specs = {s.name: s for s in ContractRules().specs(contract, dg.AssetKey(["shop", "widgets"]))}
    assert specs["contract_range"].blocking is False
    assert specs["contract_not_null"].blocking is True


def test_a_null_a_prepare_step_fills_is_not_screened_in_a_landing_file() -> None:
    class FillsNames(CheckFamily):
        def fills(self, contract: Contract) -> set[str]:
            return {"widget_name"}

    contract = widgets()
    rows = frame(contract, BAD_CSV)
    families = [ContractRules(), FillsNames()]
    before = {v.rule for v in screen_of(families, UNUSED, before_prepare=True)(contract, rows)}
    after = {v.rule for v in screen_of(families, UNUSED)(contract, rows)}
    assert before == {"accepted_values", "range"}
    assert after == {"not_null", "accepted_values", "range"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            lambda d: d["schema"][0].update(
                customProperties=[{"property": "onViolation", "value": "drop"}]
            ),
            "onViolation",
        ),
        (
            lambda d: d["schema"][0]["properties"][3].update(
                quality=[
                    {"type": "library", "metric": "invalidValues", "mustBe": 0, "severity": "fatal"}
                ]
            ),
            "weight/quality",
        ),
    ],
    ids=["unknown-mode", "unknown-severity"],
)
def test_a_contract_with_an_unknown_mode_or_severity_is_refused(change, field: str) -> None:
    document = contract_document(WIDGETS)
    change(document)
    with pytest.raises(ContractError, match=field):
        Contract(document, "<widgets>")


def test_the_mode_defaults_to_quarantining_the_whole_file() -> None:
    assert widgets().on_violation == "quarantine_file"
    assert widgets(on_violation="quarantine_rows").on_violation == "quarantine_rows"
    assert "range" in rules_for(widgets())


# -- a real materialization ---------------------------------------------------------------------


def land(settings: MeshSettings, name: str, text: str) -> str:
    uri = f"{settings.landing_uri('shop', 'widgets')}/{name}"
    settings.files.write_text(uri, text)
    return uri


def materialize(
    settings: MeshSettings, *products: Product, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        product_assets(products),
        resources={"mesh": MeshResource(home=settings.home)},
        raise_on_error=raise_on_error,
    )


def reason_of(settings: MeshSettings, name: str) -> dict[str, Any]:
    folder = f"{settings.quarantine_uri('shop')}/widgets"
    return json.loads(settings.files.read_text(f"{folder}/{name}.reason.json"))


def test_a_file_breaking_a_rule_is_quarantined_before_the_write_and_others_load(
    mesh_home: MeshSettings,
) -> None:
    contract = widgets()
    land(mesh_home, "a-good.csv", GOOD_CSV)
    bad = land(mesh_home, "b-bad.csv", BAD_CSV)
    result = materialize(mesh_home, Product("widgets", contract=contract))
    assert result.success
    table = Lake(mesh_home).read("shop/widgets")  # right after the run
    assert sorted(table["widget_id"]) == [1, 2]  # no row of the bad file, not even row 14
    assert not mesh_home.files.exists(bad)
    reason = reason_of(mesh_home, "b-bad.csv")
    assert {
        (v["rule"], v["failing_rows"], str(v["sample_keys"])) for v in reason["violations"]
    } == {
        ("not_null", 1, "[{'widget_id': 13}]"),
        ("accepted_values", 1, "[{'widget_id': 11}]"),
        ("range", 1, "[{'widget_id': 12}]"),
    }
    assert "3 row(s) break blocking contract rules" in reason["reason"]
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["contract_not_null"] and checks["contract_range"]


def test_with_quarantine_rows_only_the_breaking_rows_are_set_aside(
    mesh_home: MeshSettings,
) -> None:
    contract = widgets(on_violation="quarantine_rows")
    land(mesh_home, "a-good.csv", GOOD_CSV)
    bad = land(mesh_home, "b-bad.csv", BAD_CSV)
    product = Product("widgets", contract=contract)
    assert materialize(mesh_home, product).success
    assert sorted(Lake(mesh_home).read("shop/widgets")["widget_id"]) == [1, 2, 14]
    assert mesh_home.files.exists(bad)  # the file loaded its good row
    folder = f"{mesh_home.quarantine_uri('shop')}/widgets"
    rows = pl.read_parquet(mesh_home.files.read_bytes(f"{folder}/b-bad.csv.rows.parquet"))
    assert sorted(rows["widget_id"]) == [11, 12, 13]
    assert reason_of(mesh_home, "b-bad.csv.rows.parquet")["quarantined_rows"] == 3
    # The next run reads the file again: the same rows stay out, nothing new is quarantined.
    assert materialize(mesh_home, product).success
    assert sorted(Lake(mesh_home).read("shop/widgets")["widget_id"]) == [1, 2, 14]
    assert len(mesh_home.files.list_files(folder)) == 2


def test_a_bad_file_of_a_merge_product_does_not_break_later_runs(
    mesh_home: MeshSettings,
) -> None:
    contract = widgets()  # keyed, so merged on widget_id: every run reads every file
    assert contract.write_mode == "merge"
    product = Product("widgets", contract=contract)
    land(mesh_home, "a-good.csv", GOOD_CSV)
    land(mesh_home, "b-bad.csv", BAD_CSV)
    assert materialize(mesh_home, product).success
    land(mesh_home, "c-more.csv", "widget_id,widget_name,colour,weight\n3,washer,red,0.1\n")
    later = materialize(mesh_home, product)
    assert later.success
    assert sorted(Lake(mesh_home).read("shop/widgets")["widget_id"]) == [1, 2, 3]
    loaded = later.asset_materializations_for_node("shop__widgets")[0].metadata["loaded_files"]
    assert loaded.value == ["a-good.csv", "c-more.csv"]  # the bad one is not read again
    assert all(e.passed for e in later.get_asset_check_evaluations() if e.check_name != "drift")


def test_a_derived_product_breaking_a_rule_fails_before_its_write(
    mesh_home: MeshSettings,
) -> None:
    source = widgets()
    heavy = widgets(product="heavy_widgets")
    land(mesh_home, "a-good.csv", GOOD_CSV)

    def heavier(rows: pl.LazyFrame) -> pl.LazyFrame:
        return rows.with_columns(weight=pl.col("weight") * 100)  # 150 > the maximum 100

    derived = Product("heavy_widgets", heavier, ("shop/widgets",), contract=heavy)
    result = materialize(
        mesh_home, Product("widgets", contract=source), derived, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "shop/heavy_widgets: nothing written, 1 row(s) break blocking contract rules" in message
    assert "range on weight: 1 row(s), e.g. [1]" in message
    assert not Lake(mesh_home).exists("shop/heavy_widgets")


def test_a_derived_product_with_orphans_beyond_tolerance_fails_before_its_write(
    mesh_home: MeshSettings,
) -> None:
    """Its foreign key to the source, which lacks the transform's new ids (2 of 2 rows)."""
    land(mesh_home, "a-good.csv", GOOD_CSV)
    reference = [{"to": "widgets.odcs.yaml#/schema/widgets/properties/widget_id"}]
    properties = [
        {**c, "relationships": reference} if c["name"] == "widget_id" else c for c in WIDGETS
    ]
    renumbered = Product(
        "renumbered",
        lambda rows: rows.with_columns(widget_id=pl.col("widget_id") + 100),
        ("shop/widgets",),
        contract=widgets(properties, product="renumbered"),
    )
    result = materialize(
        mesh_home, Product("widgets", contract=widgets()), renumbered, raise_on_error=False
    )
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "referential_integrity on widget_id: 2 row(s)" in message
    assert "2 value(s) missing in shop/widgets on 2 of 2 rows" in message
    assert not Lake(mesh_home).exists("shop/renumbered")


# -- files still being written ------------------------------------------------------------------


def aged(settings: MeshSettings, uri: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(settings.files.path(uri), (then, then))


def test_a_manual_run_leaves_a_file_still_being_written_alone(
    mesh_home: MeshSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_LANDING_MIN_AGE_SECONDS", "60")
    aged(mesh_home, land(mesh_home, "a-good.csv", GOOD_CSV), 120)
    partial = land(mesh_home, "b-partial.csv", BAD_CSV[:60])  # cut in its second row
    result = materialize(mesh_home, Product("widgets", contract=widgets()))
    assert result.success  # a merge: the complete file loads
    assert sorted(Lake(mesh_home).read("shop/widgets")["widget_id"]) == [1, 2]
    metadata = result.asset_materializations_for_node("shop__widgets")[0].metadata
    assert list(metadata["unsettled"].value) == ["b-partial.csv"]
    assert mesh_home.files.exists(partial)  # not judged, not quarantined
    assert not mesh_home.files.exists(f"{mesh_home.quarantine_uri('shop')}/widgets")


def test_a_rewrite_waits_for_a_file_still_being_written(
    mesh_home: MeshSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = Product("widgets", contract=widgets(write_mode="overwrite"))
    land(mesh_home, "a-good.csv", GOOD_CSV)
    assert materialize(mesh_home, product).success
    monkeypatch.setenv("MESH_LANDING_MIN_AGE_SECONDS", "60")
    aged(mesh_home, f"{mesh_home.landing_uri('shop', 'widgets')}/a-good.csv", 120)
    land(mesh_home, "c-new.csv", "widget_id,widget_name\n9,")  # still being written
    result = materialize(mesh_home, product, raise_on_error=False)
    assert not result.success  # an overwrite without the file would be a partial table
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "nothing written, 1 file(s) may still be being written" in (
        failure.step_failure_data.user_failure_data.description
    )
    assert sorted(Lake(mesh_home).read("shop/widgets")["widget_id"]) == [1, 2]
