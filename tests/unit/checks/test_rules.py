"""Contract rules: each passes on good data and counts exactly what is wrong in bad data."""

from __future__ import annotations

from datetime import date

import dagster as dg
import polars as pl
import pytest

from dagster_project.checks.rules import (
    RuleOutcome,
    check_results,
    contract_check_specs,
    evaluate_rules,
    rules_for,
    screen_references,
)
from dagster_project.core.contracts import Contract, ContractError
from dagster_project.lake.storage import Lake
from tests.factories import column, contract_document

# ODCS: the customer_id property of the customers contract beside this one.
CUSTOMERS_ID = "customers.odcs.yaml#/schema/customers/properties/customer_id"

ALL_RULES = [
    "schema",
    "not_null",
    "unique",
    "accepted_values",
    "range",
    "row_count",
    "referential_integrity",
]


@pytest.fixture
def orders(make_contract) -> Contract:
    """shop/orders: every rule kind, with a foreign key to shop/customers."""
    return make_contract(
        [
            column("order_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("status", required=True, enum=[{"value": "new"}, {"value": "paid"}]),
            column(
                "qty", "integer", required=True, logicalTypeOptions={"minimum": 1, "maximum": 10}
            ),
            column("price", "number", logicalTypeOptions={"exclusiveMinimum": 0}),
            column("ordered_on", "date", logicalTypeOptions={"minimum": "2024-01-01"}),
            column("customer_id", "integer", relationships=[{"to": CUSTOMERS_ID}]),
            column("voucher", unique=True),
        ],
        product="orders",
        write_mode="overwrite",
        min_rows=3,
    )


@pytest.fixture
def customers(make_contract) -> Contract:
    return make_contract(
        [column("customer_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True)],
        product="customers",
    )


def good_orders() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "order_id": [1, 2, 3, 4],
            "status": ["new", "paid", "paid", "new"],
            "qty": [1, 10, 5, 2],
            "price": [0.01, 2.5, None, 3.0],
            "ordered_on": [date(2024, 1, 1), date(2025, 3, 1), date(2025, 3, 2), None],
            "customer_id": [100, 101, 100, None],
            "voucher": ["A", "B", None, None],
        },
        schema_overrides={"ordered_on": pl.Date},
    )


def outcomes(contract: Contract, frame: pl.DataFrame, lake: Lake, **kwargs) -> dict:
    return {o.rule: o for o in evaluate_rules(contract, frame, lake, **kwargs)}


@pytest.fixture
def lake_with_customers(lake: Lake, customers: Contract) -> Lake:
    lake.write(customers, pl.DataFrame({"customer_id": [100, 101]}))
    return lake


def test_the_contract_asks_for_every_rule_kind(orders: Contract) -> None:
    assert rules_for(orders) == ALL_RULES
    specs = contract_check_specs(orders, dg.AssetKey(["shop", "orders"]))
    assert [s.name for s in specs] == [f"contract_{r}" for r in ALL_RULES]
    assert all(s.blocking for s in specs)


def test_a_plain_contract_asks_only_for_the_basic_rules(make_contract) -> None:
    contract = make_contract([column("note")], write_mode="append")
    assert rules_for(contract) == ["schema", "row_count"]


def test_every_rule_passes_on_good_data(orders: Contract, lake_with_customers: Lake) -> None:
    results = outcomes(orders, good_orders(), lake_with_customers)
    assert list(results) == ALL_RULES
    failing = {rule: o.failures for rule, o in results.items() if not o.passed}
    assert failing == {}
    assert all(o.describe() == "passed" for o in results.values())
    assert results["row_count"].details == {"rows": 4, "minimum": 3}


def test_not_null_counts_nulls_in_required_columns(orders: Contract, lake: Lake) -> None:
    bad = good_orders().with_columns(
        status=pl.Series([None, "new", None, "paid"]), price=pl.Series([None] * 4)
    )
    result = outcomes(orders, bad, lake)["not_null"]
    assert not result.passed
    assert result.failures == {"order_id": 0, "status": 2, "qty": 0}  # price is optional
    assert result.describe() == "status: 2 failing"


def test_unique_counts_duplicate_keys_and_duplicate_unique_values(
    orders: Contract, lake: Lake
) -> None:
    bad = good_orders().with_columns(
        order_id=pl.Series([1, 1, 1, 4]), voucher=pl.Series(["A", "A", None, None])
    )
    result = outcomes(orders, bad, lake)["unique"]
    assert result.failures == {"order_id": 2, "voucher": 1}  # nulls are not duplicates


def test_unique_of_a_merge_product_is_checked_on_the_whole_table(make_contract, lake: Lake) -> None:
    contract = make_contract(product="gadgets", write_mode="merge")
    lake.write(contract, pl.DataFrame({"widget_id": [1, 2], "widget_name": ["a", "b"]}))
    batch = pl.DataFrame({"widget_id": [2, 3], "widget_name": ["b2", "c"]})
    lake.write(contract, batch)
    assert outcomes(contract, batch, lake)["unique"].passed


def test_accepted_values_counts_values_outside_the_enum(orders: Contract, lake: Lake) -> None:
    bad = good_orders().with_columns(status=pl.Series(["new", "shipped", "lost", "paid"]))
    result = outcomes(orders, bad, lake)["accepted_values"]
    assert result.failures == {"status": 2}


def test_range_counts_values_outside_bounds(orders: Contract, lake: Lake) -> None:
    bad = good_orders().with_columns(
        qty=pl.Series([0, 11, 10, 1]),  # below minimum, above maximum, two on the bounds
        price=pl.Series([0.0, -1.0, 0.001, None]),  # exclusiveMinimum 0: 0 itself fails
        ordered_on=pl.Series([date(2023, 12, 31), date(2024, 1, 1), None, None]),
    )
    result = outcomes(orders, bad, lake)["range"]
    assert result.failures == {"qty": 2, "price": 2, "ordered_on": 1}


@pytest.mark.parametrize(
    ("option", "bound", "values", "failing"),
    [
        ("minimum", 0, [-1.0, 0.0, 1.0], 1),
        ("exclusiveMinimum", 0, [-1.0, 0.0, 1.0], 2),
        ("maximum", 1, [0.5, 1.0, 1.5], 1),
        ("exclusiveMaximum", 1, [0.5, 1.0, 1.5], 2),
    ],
)
def test_range_options(
    make_contract, lake: Lake, option: str, bound: float, values: list[float], failing: int
) -> None:
    contract = make_contract(
        [column("x", "number", logicalTypeOptions={option: bound})], write_mode="append"
    )
    result = outcomes(contract, pl.DataFrame({"x": values}), lake)["range"]
    assert result.failures == {"x": failing}


def test_row_count_fails_below_the_contract_minimum(orders: Contract, lake: Lake) -> None:
    short = good_orders().head(2)
    result = outcomes(orders, short, lake)["row_count"]
    assert not result.passed
    assert result.details == {"rows": 2, "minimum": 3}
    # The table's row count (after a merge or append) is what counts when given.
    assert outcomes(orders, short, lake, table_rows=3)["row_count"].passed


def test_schema_reports_missing_retyped_and_extra_columns(orders: Contract, lake: Lake) -> None:
    table_columns = {
        "order_id": "int64",
        "status": "large_string",
        "qty": "double",  # retyped
        "price": "double",
        "ordered_on": "date32[day]",
        "customer_id": "int64",
        # voucher missing
        "note": "string",  # not in the contract
    }
    result = outcomes(orders, good_orders(), lake, table_columns=table_columns)["schema"]
    assert result.failures == {"qty": 1, "voucher": 1, "note": 1}
    assert result.details["voucher"] == "missing"
    assert result.details["note"] == "not in the contract"
    assert "expected Int64" in result.details["qty"]


def test_schema_accepts_the_arrow_types_delta_reports(
    orders: Contract, lake_with_customers: Lake
) -> None:
    lake_with_customers.write(orders, good_orders())
    types = lake_with_customers.column_types("shop/orders")
    result = outcomes(orders, good_orders(), lake_with_customers, table_columns=types)["schema"]
    assert result.passed, result.details


def test_referential_integrity_counts_orphan_values(
    orders: Contract, lake_with_customers: Lake
) -> None:
    bad = good_orders().with_columns(customer_id=pl.Series([100, 102, 102, 103]))
    result = outcomes(orders, bad, lake_with_customers)["referential_integrity"]
    label = "customer_id → shop/customers.customer_id"
    assert result.failures == {label: 2}  # 102 and 103, each counted once
    assert "2 value(s) missing in shop/customers" in result.details[label]


def test_referential_integrity_fails_when_the_referenced_table_is_missing(
    orders: Contract, lake: Lake
) -> None:
    result = outcomes(orders, good_orders(), lake)["referential_integrity"]
    label = "customer_id → shop/customers.customer_id"
    assert not result.passed
    assert result.failures == {label: 2}  # the distinct non-null customer ids
    assert result.details[label] == "shop/customers has not been materialized"


def test_check_results_carry_verdict_severity_and_evidence(orders: Contract) -> None:
    key = dg.AssetKey(["shop", "orders"])
    results = check_results(
        orders,
        [RuleOutcome("not_null", {"status": 2}), RuleOutcome("row_count", {"rows": 0})],
        key,
    )
    assert [(r.check_name, r.passed) for r in results] == [
        ("contract_not_null", False),
        ("contract_row_count", True),
    ]
    assert all(r.severity == dg.AssetCheckSeverity.ERROR for r in results)
    assert results[0].metadata["failing"].value == {"status": 2}
    assert results[0].description == "status: 2 failing"


def _orders_tolerating(make_contract, share: float, severity: str) -> Contract:
    tolerance = [
        {"property": "maxOrphanShare", "value": share},
        {"property": "severity", "value": severity},
    ]
    return make_contract(
        [
            column("order_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column(
                "customer_id",
                "integer",
                relationships=[{"to": CUSTOMERS_ID, "customProperties": tolerance}],
            ),
        ],
        product="orders",
        write_mode="overwrite",
    )


def test_referential_integrity_tolerates_the_contracts_share_of_orphans(
    make_contract, lake_with_customers: Lake
) -> None:
    rows = pl.DataFrame({"order_id": [1, 2, 3, 4], "customer_id": [100, 101, 999, 100]})
    label = "customer_id → shop/customers.customer_id"
    within = _orders_tolerating(make_contract, 0.3, "error")  # 1 orphan row of 4: 25%
    result = outcomes(within, rows, lake_with_customers)["referential_integrity"]
    assert result.passed and "1 of 4 rows (25.00%; tolerated 30.00%)" in result.details[label]
    over = _orders_tolerating(make_contract, 0.2, "error")
    result = outcomes(over, rows, lake_with_customers)["referential_integrity"]
    assert not result.passed and not result.warn_only
    assert "e.g. [999]" in result.details[label]
    # what a user reads says how many, how much of the rows, and which (not "1 failing")
    assert result.describe() == f"{label}: {result.details[label]}"


def test_a_warning_relationship_warns_and_does_not_block(
    make_contract, lake_with_customers: Lake
) -> None:
    contract = _orders_tolerating(make_contract, 0.0, "warning")
    spec = next(
        s
        for s in contract_check_specs(contract, dg.AssetKey(["shop", "orders"]))
        if s.name == "contract_referential_integrity"
    )
    assert not spec.blocking
    rows = pl.DataFrame({"order_id": [1, 2], "customer_id": [100, 999]})
    outcome = outcomes(contract, rows, lake_with_customers)["referential_integrity"]
    (result,) = [
        r
        for r in check_results(contract, [outcome], dg.AssetKey(["shop", "orders"]))
        if r.check_name == "contract_referential_integrity"
    ]
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN


def test_the_screen_sets_aside_the_orphans_the_check_counts_beyond_tolerance(
    make_contract, lake_with_customers: Lake
) -> None:
    rows = pl.DataFrame({"order_id": [1, 2, 3, 4], "customer_id": [100, 999, 998, 100]})
    over = _orders_tolerating(make_contract, 0.2, "error")  # 2 orphan rows of 4: 50%
    (found,) = screen_references(over, rows, lake_with_customers)
    checked = outcomes(over, rows, lake_with_customers)["referential_integrity"]
    assert (found.rule, found.column, found.rows) == ("referential_integrity", "customer_id", 2)
    assert found.sample_keys == [{"order_id": 2}, {"order_id": 3}]
    label = "customer_id → shop/customers.customer_id"
    assert found.detail == checked.details[label] and "e.g. [998, 999]" in found.detail
    assert rows.filter(found.mask)["order_id"].to_list() == [2, 3]
    within = _orders_tolerating(make_contract, 0.5, "error")
    assert screen_references(within, rows, lake_with_customers) == []
    assert outcomes(within, rows, lake_with_customers)["referential_integrity"].passed
    warning = _orders_tolerating(make_contract, 0.0, "warning")  # reported, never screened
    assert screen_references(warning, rows, lake_with_customers) == []


def test_orphans_of_a_parent_never_materialized_are_left_to_the_check(
    orders: Contract, lake: Lake
) -> None:
    assert screen_references(orders, good_orders(), lake) == []
    assert not outcomes(orders, good_orders(), lake)["referential_integrity"].passed


def _flights(make_contract, **relationship) -> Contract:
    """shop/flights: (carrier, tail) references shop/planes' composite key."""
    document = contract_document(
        [
            column("flight_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("carrier"),
            column("tail"),
        ],
        product="flights",
        write_mode="overwrite",
    )
    planes = "planes.odcs.yaml#/schema/planes/properties/"
    document["schema"][0]["relationships"] = [
        {
            "type": "foreignKey",
            "from": ["flights.carrier", "flights.tail"],
            "to": [f"{planes}carrier", f"{planes}tail"],
            **relationship,
        }
    ]
    return Contract(document, "<flights>")


@pytest.fixture
def lake_with_planes(lake: Lake, make_contract) -> Lake:
    planes = make_contract(
        [
            column("carrier", primaryKey=True, primaryKeyPosition=1, required=True),
            column("tail", primaryKey=True, primaryKeyPosition=2, required=True),
        ],
        product="planes",
    )
    lake.write(planes, pl.DataFrame({"carrier": ["AA", "AA", "UA"], "tail": ["N1", "N2", "N1"]}))
    return lake


def test_a_composite_key_is_matched_as_a_whole(make_contract, lake_with_planes: Lake) -> None:
    flights = _flights(make_contract)
    # UA N2: each value exists in the parent, the pair does not; a null part is not checked
    rows = pl.DataFrame(
        {
            "flight_id": [1, 2, 3, 4],
            "carrier": ["AA", "UA", "UA", None],
            "tail": ["N2", "N2", "N1", "N9"],
        }
    )
    result = outcomes(flights, rows, lake_with_planes)["referential_integrity"]
    label = "(carrier, tail) → shop/planes.(carrier, tail)"
    assert result.failures == {label: 1} and not result.passed
    assert "1 value(s) missing in shop/planes on 1 of 3 rows" in result.details[label]
    assert "UA" in result.details[label] and "N2" in result.details[label]
    (found,) = screen_references(flights, rows, lake_with_planes)
    assert (found.column, found.sample_keys) == ("carrier, tail", [{"flight_id": 2}])
    good = rows.filter(pl.col("flight_id") != 2)
    assert outcomes(flights, good, lake_with_planes)["referential_integrity"].passed


def test_a_composite_key_takes_its_tolerance_from_the_relationship(
    make_contract, lake_with_planes: Lake
) -> None:
    tolerance = [{"property": "maxOrphanShare", "value": 0.5}]
    flights = _flights(make_contract, customProperties=tolerance)
    rows = pl.DataFrame({"flight_id": [1, 2], "carrier": ["AA", "UA"], "tail": ["N1", "N2"]})
    assert outcomes(flights, rows, lake_with_planes)["referential_integrity"].passed
    assert screen_references(flights, rows, lake_with_planes) == []


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        (
            {"to": ["planes.odcs.yaml#/schema/planes/properties/carrier"]},
            "relationships/0",
            "as many",
        ),
        ({"from": ["flights.carrier", "flights.wing"]}, "relationships/0/from", "not a property"),
        (
            {
                "to": [
                    "planes.odcs.yaml#/schema/planes/properties/carrier",
                    "tails.odcs.yaml#/schema/tails/properties/tail",
                ]
            },
            "relationships/0/to",
            "of one product",
        ),
    ],
)
def test_a_composite_key_that_cannot_be_checked_is_refused_at_load(
    make_contract, change: dict, field: str, says: str
) -> None:
    with pytest.raises(ContractError) as refused:
        _flights(make_contract, **change)
    assert f"schema/0/{field}" in str(refused.value) and says in str(refused.value)


def test_a_property_cannot_hold_a_composite_key(make_contract) -> None:
    planes = "planes.odcs.yaml#/schema/planes/properties/"
    with pytest.raises(ContractError, match="schema-level relationship"):
        make_contract(
            [column("carrier", relationships=[{"to": [f"{planes}carrier", f"{planes}tail"]}])]
        )
