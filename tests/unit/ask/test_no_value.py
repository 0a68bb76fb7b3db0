"""A NULL group key reads as '(no value)' in CLI tables, answers' sentences and insights,
never as Python's 'None'; JSON keeps null."""

import json
from datetime import date

from rich.console import Console

from dagster_project.app.cli import ask as ask_cli
from dagster_project.ask import Answer
from dagster_project.ask.engine import narrate
from dagster_project.ask.insights import DomainFacts, headline_lines
from dagster_project.ask.narratives import insight_rows
from dagster_project.metadata.semantics import InsightsSpec, Metric, SemanticLayer

LAYER = SemanticLayer(metrics={"visits": Metric("visits", "shop/visits", "count")})
QUERY = {"metrics": ["visits"], "dimensions": ["region"]}
ROWS = [["North", 5], [None, 3]]  # visits with no region recorded


def test_the_cli_table_shows_no_value_and_json_keeps_null(monkeypatch, capsys):
    shown = Console(width=100, record=True)
    monkeypatch.setattr(ask_cli, "console", shown)
    answer = Answer("visits by region", QUERY, "SELECT ...", ["region", "visits"], ROWS)
    answer.narrative = narrate(LAYER, QUERY, answer.columns, answer.rows)
    ask_cli._print(answer.as_dict(), "table")
    text = shown.export_text()
    assert "(no value)" in text and "None" not in text, text
    assert "lowest (no value) with 3" in answer.narrative, answer.narrative
    capsys.readouterr()  # the table, printed too
    ask_cli._print(answer.as_dict(), "json")
    assert json.loads(capsys.readouterr().out)["rows"] == ROWS


def test_insights_name_a_mover_without_a_value_plainly():
    spec = InsightsSpec("shop", ("visits",), "visits", ("region",))
    mover = {"metric": "visits", "dimension": "region", "value": None, "before": 2, "after": 3,
             "change": 0.5}  # fmt: skip
    facts = DomainFacts(spec, current=(date(2025, 3, 1), date(2025, 3, 28)), movers=[mover])
    row = insight_rows(facts, LAYER).row(0, named=True)
    assert row["subject"] == "region=(no value)"
    assert row["narrative"] == "Visits in region (no value) rose 50.0% to 3 (from 2)."
    assert "Top movers in visits by region: (no value) +50.0%." in headline_lines(facts, LAYER)
