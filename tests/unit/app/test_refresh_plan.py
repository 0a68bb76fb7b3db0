"""How a refresh splits work: stretches of landed days, products' own partition starts,
products with nothing landed or with unbuilt inputs skipped (not failed)."""

from __future__ import annotations

from datetime import date

import dagster as dg

from dagster_project.app.refresh import plan_data, spans
from dagster_project.products.builder import SOURCE_TAG


def test_spans_split_where_landed_days_are_more_than_four_weeks_apart():
    days = [date(2009, 2, 2), date(2009, 2, 9), date(2009, 3, 2), date(2010, 2, 1)]
    assert spans(days) == [(date(2009, 2, 2), date(2009, 3, 2)), (date(2010, 2, 1),) * 2]
    assert spans([]) == []
    assert spans(days, gap=7) == [
        (date(2009, 2, 2), date(2009, 2, 9)),
        (date(2009, 3, 2), date(2009, 3, 2)),
        (date(2010, 2, 1), date(2010, 2, 1)),
    ]


def _asset(key: str, deps: tuple[str, ...] = (), landing: bool = False) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey(key.split("/")),
        deps=[dg.AssetKey(d.split("/")) for d in deps],
        tags={SOURCE_TAG: "landing"} if landing else {},
    )
    def _a() -> None: ...

    return _a


def test_nothing_landed_or_unbuilt_inputs_are_skipped_saying_why(mesh_home):
    assets = [
        _asset("d/raw", landing=True),
        _asset("d/derived", ("d/raw",)),
        _asset("g/copy", ("x/never_built",)),
        _asset("g/audit", ("g/copy",)),
    ]
    plan = plan_data(assets, [], mesh_home)
    assert plan.skipped == {
        dg.AssetKey(["d", "raw"]): "nothing landed for d/raw",
        dg.AssetKey(["d", "derived"]): "nothing landed for d/raw",
        dg.AssetKey(["g", "copy"]): (
            "its input(s) x/never_built are not built and not in this refresh"
        ),
    }  # the audit runs: its input is part of this refresh


def test_a_daily_product_whose_files_carry_no_day_is_skipped_saying_how_to_name_them(
    mesh_home, demo_contracts
):
    contract = demo_contracts["sales/order_lines"]
    folder = mesh_home.landing_uri("sales", "order_lines")
    mesh_home.files.write_text(f"{folder}/export.csv", "order_id\n1\n")
    mesh_home.files.write_text(f"{folder}/export-final.csv", "order_id\n2\n")
    assets = [
        _asset("sales/order_lines", landing=True),
        _asset("sales/daily", ("sales/order_lines",)),
    ]
    plan = plan_data(assets, [contract], mesh_home)
    reason = plan.skipped[dg.AssetKey(["sales", "order_lines"])]
    assert reason.startswith("2 landing file(s) carry no day in their name (export-final.csv")
    assert "2025-03-01.csv or order_lines_2025-03-01.csv" in reason
    assert plan.skipped[dg.AssetKey(["sales", "daily"])] == f"sales/order_lines: {reason}"
