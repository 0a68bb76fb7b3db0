"""ODCS contracts: official-schema validity, typed access, and errors that say what is wrong."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import polars as pl
import pytest
import yaml

from dagster_project.core.contracts import (
    Contract,
    ContractError,
    load_contract,
    load_contracts,
    odcs_json_schema,
    parse_reference,
)
from tests.factories import CONTRACT_FILES, column, contract_document


def test_the_repository_has_its_demo_contracts() -> None:
    names = {(p.parent.parent.name, p.name.removesuffix(".odcs.yaml")) for p in CONTRACT_FILES}
    assert {
        ("sales", "stores"),
        ("sales", "order_lines"),
        ("sales", "daily_sales"),
        ("inventory", "products"),
        ("inventory", "stock_levels"),
        ("customers", "customer_profiles"),
        ("customers", "customer_segments"),
        ("governance", "catalog"),
        ("governance", "policy_scorecard"),
    } <= names


@pytest.mark.parametrize("path", CONTRACT_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_contract_validates_against_the_official_odcs_schema(path: Path) -> None:
    # The schema shipped by the `open-data-contract-standard` package, read independently.
    schema = json.loads(
        resources.files("open_data_contract_standard").joinpath("schema.json").read_text()
    )
    assert schema["title"] == "Open Data Contract Standard (ODCS)"
    assert schema == odcs_json_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    document = yaml.safe_load(path.read_text())
    errors = [e.message for e in validator_class(schema).iter_errors(document)]
    assert errors == []
    contract = load_contract(path)
    # The file sits in its domain's folder and is named after its product.
    assert contract.domain == path.parent.parent.name
    assert contract.product == path.name.removesuffix(".odcs.yaml")
    assert contract.path == path


def test_typed_access_to_order_lines(demo_contracts: dict[str, Contract]) -> None:
    c = demo_contracts["sales/order_lines"]
    assert c.key == "sales/order_lines"
    assert c.version == "1.1.0"  # 1.1.0 added unit_price_imputed (quality)
    assert c.primary_key == ["order_id", "line_number"]
    assert c.partition_column == "order_date"
    assert c.write_mode == "partition_overwrite"
    assert c.owner == "ana.ruiz@retail.example"
    assert c.freshness is not None
    assert c.freshness.max_age == timedelta(days=2)
    assert c.freshness.element == "order_lines.order_date"
    assert c.pii_columns == []
    assert c.min_row_count == 1
    assert c.polars_schema["order_ts"] == pl.Datetime("us")
    assert c.polars_schema["order_date"] == pl.Date
    assert c.column("channel").accepted_values == ["store", "online"]
    assert c.column("discount").bounds == {"minimum": 0, "maximum": 1}
    assert c.column("unit_price").bounds == {"exclusiveMinimum": 0}
    assert c.column("payment_type").required is False
    assert c.column("order_id").required is True
    assert c.column("customer_id").references == [
        "../../customers/contracts/customer_profiles.odcs.yaml"
        "#/schema/customer_profiles/properties/customer_id"
    ]
    with pytest.raises(KeyError, match="no column 'nope'"):
        c.column("nope")


def test_typed_access_to_the_other_demo_contracts(demo_contracts: dict[str, Contract]) -> None:
    stock = demo_contracts["inventory/stock_levels"]
    assert stock.primary_key == ["snapshot_date", "store_id", "product_id"]
    assert stock.partition_column == "snapshot_date"
    profiles = demo_contracts["customers/customer_profiles"]
    assert profiles.pii_columns == ["full_name", "email", "phone", "birth_date"]
    assert profiles.write_mode == "merge"
    assert profiles.partition_column is None
    assert profiles.owner == "sam.okafor@retail.example"
    stores = demo_contracts["sales/stores"]
    assert stores.freshness is not None and stores.freshness.max_age == timedelta(days=7)
    assert demo_contracts["customers/customer_segments"].write_mode == "overwrite"
    assert demo_contracts["inventory/products"].column("sku").unique is True


def test_load_contracts_keys_a_folder_by_product() -> None:
    sales = load_contracts(Path(CONTRACT_FILES[0]).parents[2] / "sales" / "contracts")
    assert sorted(sales) == ["daily_sales", "insights", "order_lines", "stores"]


def test_primary_key_follows_primary_key_position_not_listing_order(make_contract) -> None:
    c = make_contract(
        [
            column("b", "integer", primaryKey=True, primaryKeyPosition=2),
            column("c"),
            column("a", "date", primaryKey=True, primaryKeyPosition=1),
        ]
    )
    assert c.primary_key == ["a", "b"]
    assert c.column_names == ["b", "c", "a"]
    assert c.write_mode == "merge"  # the default when there is a key


def test_write_mode_defaults_to_append_without_a_key(make_contract) -> None:
    assert make_contract([column("note")]).write_mode == "append"


def test_owner_falls_back_to_the_team_name_and_is_none_without_a_team() -> None:
    doc = contract_document()
    doc["team"] = {"name": "shop-team", "members": [{"username": "lee", "role": "analyst"}]}
    assert Contract(doc).owner == "shop-team"
    del doc["team"]
    assert Contract(doc).owner is None


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (2, "d", timedelta(days=2)),
        (2, "days", timedelta(days=2)),
        (6, "h", timedelta(hours=6)),
        (6, "hours", timedelta(hours=6)),
        (30, "min", timedelta(minutes=30)),
        (1, "w", timedelta(weeks=1)),
        (1, "y", timedelta(days=365)),
        (1.5, "d", timedelta(hours=36)),
    ],
)
def test_freshness_units(value: float, unit: str, expected: timedelta) -> None:
    doc = contract_document()
    doc["slaProperties"] = [{"property": "freshness", "value": value, "unit": unit}]
    fresh = Contract(doc).freshness
    assert fresh is not None and fresh.max_age == expected


def test_no_freshness_without_a_latency_or_freshness_sla() -> None:
    doc = contract_document()
    doc["slaProperties"] = [{"property": "retention", "value": 1, "unit": "y"}]
    assert Contract(doc).freshness is None


def test_parse_reference() -> None:
    same_folder = "stores.odcs.yaml#/schema/stores/properties/store_id"
    assert parse_reference(same_folder, "sales") == ("sales", "stores", "store_id")
    other_domain = "../../inventory/contracts/products.odcs.yaml#schema/products/properties/sku"
    assert parse_reference(other_domain, "sales") == ("inventory", "products", "sku")
    assert parse_reference("stores.store_id", "sales") == ("sales", "stores", "store_id")
    assert parse_reference("inventory.products.product_id", "sales") == (
        "inventory",
        "products",
        "product_id",
    )
    with pytest.raises(ValueError, match=r"product\.column"):
        parse_reference("store_id", "sales")
    with pytest.raises(ValueError, match="contracts/ folder"):
        parse_reference("elsewhere/stores.odcs.yaml#/schema/stores/properties/store_id", "sales")


def test_a_relationship_to_another_contract_by_shorthand_names_the_odcs_way(
    make_contract,
) -> None:
    refs = [{"to": "inventory.products.product_id"}]
    with pytest.raises(ContractError, match="does not have") as raised:
        make_contract([column("product_id", "integer", relationships=refs)])
    assert (
        "../../inventory/contracts/products.odcs.yaml#/schema/products/properties/product_id"
        in (str(raised.value))
    )


# -- invalid contracts: ContractError names the file, the field and the reason ---------------


def _set_version_int(doc: dict[str, Any]) -> None:
    doc["version"] = 1


def _set_required_text(doc: dict[str, Any]) -> None:
    doc["schema"][0]["properties"][0]["required"] = "yes"


def _add_unknown_top_field(doc: dict[str, Any]) -> None:
    doc["owner_team"] = "shop-team"


def _add_unknown_column_field(doc: dict[str, Any]) -> None:
    doc["schema"][0]["properties"][1]["colour"] = "blue"


def _bad_write_mode(doc: dict[str, Any]) -> None:
    doc["customProperties"] = [{"property": "writeMode", "value": "upsert"}]


def _merge_without_key(doc: dict[str, Any]) -> None:
    doc["customProperties"] = [{"property": "writeMode", "value": "merge"}]
    for prop in doc["schema"][0]["properties"]:
        prop.pop("primaryKey", None)
        prop.pop("primaryKeyPosition", None)


def _partition_overwrite_without_partition(doc: dict[str, Any]) -> None:
    doc["customProperties"] = [{"property": "writeMode", "value": "partition_overwrite"}]


def _partition_on_a_string(doc: dict[str, Any]) -> None:
    doc["customProperties"] = [{"property": "writeMode", "value": "partition_overwrite"}]
    doc["schema"][0]["properties"].append(column("sold_on", "string", partitioned=True))


def _no_domain(doc: dict[str, Any]) -> None:
    del doc["domain"]


def _two_schema_objects(doc: dict[str, Any]) -> None:
    doc["schema"].append({**doc["schema"][0], "name": "gadgets"})


def _unknown_sla_unit(doc: dict[str, Any]) -> None:
    doc["slaProperties"] = [{"property": "latency", "value": 2, "unit": "fortnights"}]


def _missing_version(doc: dict[str, Any]) -> None:
    del doc["version"]


def _limitations_under_team(doc: dict) -> None:
    doc["team"] = {"name": "widgets-team", "limitations": "Late on Mondays."}


def _misspell_logical_type(doc: dict) -> None:
    column = doc["schema"][0]["properties"][1]
    column["logicalTyp"] = column.pop("logicalType")


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (_set_version_int, "version", "is not of type 'string'"),
        (_set_required_text, "schema/0/properties/0/required", "is not of type 'boolean'"),
        (_add_unknown_top_field, "owner_team", "unknown field 'owner_team'"),
        (_add_unknown_column_field, "schema/0/properties/1/colour", "unknown field 'colour'"),
        (_misspell_logical_type, "schema/0/properties/1/logicalTyp", "did you mean 'logicalType'"),
        (_limitations_under_team, "team/limitations", "ODCS has it under 'description')"),
        (_bad_write_mode, "customProperties/writeMode", "'upsert' is not one of merge"),
        (_merge_without_key, "schema/0/properties", "merge needs a primaryKey"),
        (
            _partition_overwrite_without_partition,
            "schema/0/properties",
            "partition_overwrite needs a partitioned column",
        ),
        (
            _partition_on_a_string,
            "schema/0/properties/2/partitioned",
            "sold_on is a string: a daily partition is a date or timestamp column",
        ),
        (_no_domain, "domain", "names its domain"),
        (_two_schema_objects, "schema", "exactly one schema object"),
        (_unknown_sla_unit, "slaProperties/0/unit", "unknown unit 'fortnights'"),
        (_missing_version, "(document)", "'version' is a required property"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_invalid_contract_raises_contract_error(
    tmp_path: Path, mutate, field: str, reason: str
) -> None:
    doc = contract_document()
    mutate(doc)
    path = tmp_path / "widgets.odcs.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(ContractError) as info:
        load_contract(path)
    err = info.value
    assert err.path == str(path)
    assert err.field == field
    assert reason in err.reason
    assert str(err).startswith(f"{path}: {field}: ")


def test_a_timestamp_can_be_the_daily_partition(tmp_path: Path) -> None:
    """Event data carries timestamps: a row's day is the UTC day of its timestamp, a
    logical partition (no Delta partition per instant)."""
    doc = contract_document()
    doc["customProperties"] = [{"property": "writeMode", "value": "partition_overwrite"}]
    doc["schema"][0]["properties"].append(column("sold_at", "timestamp", partitioned=True))
    path = tmp_path / "widgets.odcs.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    contract = load_contract(path)
    assert contract.partition_column == "sold_at"
    assert contract.partition_by == []
    assert contract.event_time == "sold_at"


def test_not_yaml_raises_contract_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.odcs.yaml"
    path.write_text("apiVersion: v3.2.0\nschema: [unclosed\n  name: x\n")
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert info.value.path == str(path)
    assert info.value.field == "(yaml)"
    assert "line" in info.value.reason  # yaml says where it broke


def test_yaml_that_is_not_a_mapping_raises_contract_error(tmp_path: Path) -> None:
    path = tmp_path / "list.odcs.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert (info.value.path, info.value.field) == (str(path), "(document)")
    assert "mapping" in info.value.reason


def test_a_broken_file_stops_loading_its_folder(tmp_path: Path) -> None:
    (tmp_path / "good.odcs.yaml").write_text(yaml.safe_dump(contract_document(product="good")))
    (tmp_path / "bad.odcs.yaml").write_text("kind: [")
    with pytest.raises(ContractError) as info:
        load_contracts(tmp_path)
    assert info.value.path == str(tmp_path / "bad.odcs.yaml")


def test_one_domains_broken_contract_leaves_the_others_in_the_mesh(tmp_path, monkeypatch):
    """A typo in one domain: the mesh's contracts (governance, ask, access) still list every
    other domain's; strict discovery names the file, the field and the fix."""
    from dagster_project.checks.quality.companions import discover_contracts

    for name, broken in (("good_domain", False), ("typo_domain", True)):
        doc = contract_document(domain=name)
        if broken:
            _misspell_logical_type(doc)
        folder = tmp_path / name / "contracts"
        folder.mkdir(parents=True)
        (tmp_path / name / "__init__.py").write_text("")
        (tmp_path / name / "definitions.py").write_text("")
        (folder / "widgets.odcs.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n"
        + "".join(
            f"  - python_module:\n      module_name: {n}.definitions\n      location_name: {n}\n"
            for n in ("good_domain", "typo_domain")
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [c.key for c in discover_contracts(path=workspace)] == ["good_domain/widgets"]
    with pytest.raises(ContractError, match=r"logicalTyp.*did you mean 'logicalType'"):
        discover_contracts(path=workspace, strict=True)


def test_an_unchanged_file_loads_as_the_same_contract_a_changed_one_anew(tmp_path: Path) -> None:
    path = tmp_path / "stores.odcs.yaml"
    path.write_text(yaml.safe_dump(contract_document([column("store_id", "integer")])))
    first = load_contract(path)
    assert load_contract(path) is first
    document = yaml.safe_load(path.read_text())
    document["version"] = "2.0.0"  # the same size or not, read at once: a new contract
    path.write_text(yaml.safe_dump(document))
    assert load_contract(path).version == "2.0.0"


def test_a_valid_document_is_remembered_on_disk_and_a_changed_one_validated_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_project.core import contracts

    monkeypatch.setenv("MESH_HOME", str(tmp_path))
    # This process may have validated the same document already (another test, in memory).
    monkeypatch.setattr(contracts, "_VALID", set())
    document = contract_document()
    contracts.validate_document(document)
    kept = (tmp_path / ".cache" / "valid-contracts").read_text().split()
    assert len(kept) == 1
    # Another process (a fresh in-memory set) trusts the kept digest, not a changed document.
    monkeypatch.setattr(contracts, "_VALID", set())
    contracts._valid_path.cache_clear()
    contracts.validate_document(document)
    assert kept[0] in contracts._VALID
    broken = {**document, "status": 42}
    with pytest.raises(ContractError):
        contracts.validate_document(broken)


def test_a_cache_that_cannot_be_written_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_project.core import contracts

    (tmp_path / ".cache").write_text("a file where the cache folder would be")
    monkeypatch.setenv("MESH_HOME", str(tmp_path))
    monkeypatch.setattr(contracts, "_VALID", set())
    contracts.validate_document(contract_document())
    assert list(tmp_path.iterdir()) == [tmp_path / ".cache"]
