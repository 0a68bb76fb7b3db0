"""The answer's sentence, from its rows (narrate: a template, no model)."""

from dagster_project.ask.engine import narrate
from dagster_project.metadata.semantics import Metric, SemanticLayer

LAYER = SemanticLayer(metrics={"delay": Metric("delay", "air/flights", "avg", "dep_delay")})


def test_the_one_row_of_a_lowest_first_ranking_is_called_the_lowest():
    lowest = {"metrics": ["delay"], "dimensions": ["dest"], "order_by": ["delay"], "limit": 1}
    text = narrate(LAYER, lowest, ["dest", "delay"], [["SJU", 9.5]])
    assert "Lowest is SJU with 9.50" in text and "Highest" not in text, text
    highest = {**lowest, "order_by": ["-delay"]}
    assert "Highest is SJU" in narrate(LAYER, highest, ["dest", "delay"], [["SJU", 9.5]])
    grouped = {"metrics": ["delay"], "dimensions": ["dest"]}  # every row: both ends named
    text = narrate(LAYER, grouped, ["dest", "delay"], [["SJU", 9.5], ["BOS", 3.0]])
    assert "Highest is SJU" in text and "lowest BOS" in text, text


def test_dimension_values_are_shown_as_they_are_not_as_amounts():
    by_year = {"metrics": ["delay"], "dimensions": ["season"]}
    text = narrate(LAYER, by_year, ["season", "delay"], [[2020, 1500.0], [2019, 2.5]])
    assert "Highest is 2020 with 1,500" in text and "lowest 2019 with 2.50" in text, text
    by_flag = {"metrics": ["delay"], "dimensions": ["cancelled"]}
    text = narrate(LAYER, by_flag, ["cancelled", "delay"], [[True, 9.0], [False, 3.0]])
    assert "Highest is cancelled = true" in text and "lowest cancelled = false" in text, text
