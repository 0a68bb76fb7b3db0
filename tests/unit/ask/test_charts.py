"""Which answers get a chart: a line over time, bars over categories, none for a single
number or rows without a measure."""

from datetime import date

from dagster_project.ask.charts import answer_chart, plotly_js


def test_categories_get_bars_with_the_columns_as_axes():
    rows = [["North", 10.5], ["South", 7.0], ["East", None]]
    assert answer_chart(["region", "revenue"], rows) == {
        "type": "bar",
        "x": "region",
        "y": ["revenue"],
        "series": None,
    }


def test_time_gets_a_line_and_a_second_dimension_splits_it_into_series():
    days = [["2025-03-01", 4], ["2025-03-02", 5]]
    assert answer_chart(["order_date", "units"], days)["type"] == "line"
    months = [["2025-03", "North", 1.0], ["2025-03", "South", 2.0], ["2025-04", "North", 3.0]]
    spec = answer_chart(["month", "region", "revenue"], months)
    assert spec == {"type": "line", "x": "month", "y": ["revenue"], "series": "region"}
    assert answer_chart(["day", "n"], [[date(2025, 3, 1), 1], [date(2025, 3, 2), 2]])["type"] == (
        "line"
    )


def test_a_single_number_or_no_measure_gets_no_chart():
    assert answer_chart(["revenue"], [[12.5]]) is None
    assert answer_chart(["region", "revenue"], [["North", 12.5]]) is None
    assert answer_chart(["region", "city"], [["North", "A"], ["South", "B"]]) is None
    assert answer_chart(["a", "b"], [[1, 2], [3, 4]]) is None  # nothing to put on the x axis
    many = [[f"d{i}", f"g{i}", i] for i in range(20)]
    assert answer_chart(["d", "g", "n"], many) is None  # 20 series are noise


def test_plotly_ships_in_the_installed_package():
    js = plotly_js()
    assert len(js) > 1_000_000 and "newPlot" in js
