import polars as pl
import pytest

from dagster_project.checks.quality.derivation import NotRowLevel, derivations, to_polars


def test_a_formula_becomes_a_polars_expression_over_its_inputs():
    expr, inputs = to_polars(
        "quantity * unit_price * (1 - discount)", {"quantity", "unit_price", "discount"}
    )
    frame = pl.DataFrame({"quantity": [2, 3], "unit_price": [10.0, 4.0], "discount": [0.5, 0.0]})
    assert frame.select(expr).to_series().to_list() == [10.0, 12.0]
    assert inputs == ("quantity", "unit_price", "discount")


def test_functions_and_negation_are_translated():
    expr, _ = to_polars("round(abs(-a) / b, 1) + coalesce(c, 2)", {"a", "b", "c"})
    frame = pl.DataFrame(
        {"a": [1.0], "b": [3.0], "c": [None]},
        schema={"a": pl.Float64, "b": pl.Float64, "c": pl.Float64},
    )
    assert frame.select(expr).item() == pytest.approx(2.3)


@pytest.mark.parametrize(
    "text",
    [
        "sum(order_lines.net_amount)",  # an aggregate over another product
        "other.quantity * 2",  # a column of another table
        "quantity || 'x'",  # not arithmetic
        "unknown_column + 1",
        "quantity; DROP TABLE order_lines",  # never evaluated, never accepted
        "(SELECT 1)",
    ],
)
def test_anything_but_row_level_arithmetic_is_refused(text):
    with pytest.raises(NotRowLevel):
        to_polars(text, {"quantity"})


def test_contract_derivations_keep_row_level_ones_only(demo_contracts):
    found = derivations(demo_contracts["sales/order_lines"])
    assert [(d.column, d.inputs) for d in found] == [
        ("net_amount", ("quantity", "unit_price", "discount"))
    ]
    assert found[0].formula() == "quantity × unit_price × (1 − discount)"
    assert derivations(demo_contracts["sales/daily_sales"]) == []  # sum(...) is an aggregate
