"""The default analyst asks the dragracer domain questions in plain words: each answer's
rows must equal its gold SQL's over the products (tests/domains/dragracer/questions.yaml).

Questions the current interpreter gets wrong stay in the set, marked xfail(strict=True)
with what goes wrong, so they flip to failures-to-unmark once it answers them."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import yaml

from dagster_project.ask import Asker
from tests.domains.dragracer.conftest import RealMesh
from tests.factories import bench_module

BENCH_ASK = bench_module("ask")
QUESTIONS = yaml.safe_load((Path(__file__).parent / "questions.yaml").read_text())
# Questions the interpreter answers wrongly today, and how (issue 16 rewrites it).
KNOWN_WRONG: dict[str, str] = {
    "Average age of contestants from Texas": (
        "'from Texas' is not a filter: no partial match of hometowns ending in ', Texas'"
    ),
    "Which 2 contestants were in the bottom the most?": (
        "'contestants' is read as the contestant_count metric, not as the dimension to rank "
        "by: the answer is two totals, not the top 2 queens by bottoms"
    ),
}


def same_rows(got: list, gold: list) -> bool:
    """As bench/ask.py grades an answer, a timestamp read as its day (date_trunc's)."""

    def days(rows: list) -> list[list]:
        return [[v.date() if isinstance(v, datetime) else v for v in row] for row in rows]

    return BENCH_ASK.same_rows(days(got), days(gold))


def run_gold(mesh: RealMesh, sql: str) -> list[tuple]:
    con = duckdb.connect()
    try:
        for product in set(re.findall(r"dragracer\.(\w+)", sql)):
            con.execute('CREATE SCHEMA IF NOT EXISTS "dragracer"')
            con.register(f"__{product}", mesh.lake.dataset(f"dragracer/{product}"))
            con.execute(f'CREATE VIEW dragracer."{product}" AS SELECT * FROM "__{product}"')
        return con.sql(sql).fetchall()
    finally:
        con.close()


def _params():
    for q in QUESTIONS:
        marks = []
        if q["question"] in KNOWN_WRONG:
            marks = [pytest.mark.xfail(strict=True, reason=KNOWN_WRONG[q["question"]])]
        yield pytest.param(q, id=q["question"], marks=marks)


@pytest.fixture(scope="module")
def analyst(real_mesh: RealMesh) -> Asker:
    return Asker(real_mesh.lake, provider="offline")  # the default role: analyst


def test_the_set_has_at_least_20_questions_of_every_kind():
    assert len(QUESTIONS) >= 20
    kinds = {q["kind"] for q in QUESTIONS}
    assert {"total", "by_dimension", "filter", "top_n", "time_range"} <= kinds


def test_gold_sql_is_not_trivially_empty(real_mesh: RealMesh):
    for q in QUESTIONS:
        rows = run_gold(real_mesh, q["gold"])
        assert rows and any(v is not None for row in rows for v in row), q["question"]


@pytest.mark.parametrize("q", list(_params()))
def test_the_analyst_gets_the_gold_answer(q: dict, analyst: Asker, real_mesh: RealMesh):
    assert analyst.role == "analyst"
    answer = analyst.ask(q["question"])
    assert answer.answered, (answer.narrative, answer.suggestions)
    gold = run_gold(real_mesh, q["gold"])
    assert same_rows(answer.rows, gold), (answer.sql, answer.rows, gold)
