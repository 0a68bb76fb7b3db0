"""The fresh dragracer set (bench/ask_questions_fresh_dragracer.yaml), written before the
interpreter was tuned on it: graded as bench/ask.py grades, per half (odd positions
fresh-dev, even fresh-test). The test half is counted, its misses never printed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from dagster_project.ask import Asker
from tests.domains.dragracer.conftest import RealMesh
from tests.domains.dragracer.test_questions import run_gold, same_rows
from tests.factories import bench_module

BENCH_ASK = bench_module("ask")
FRESH = Path(__file__).parents[3] / "bench" / "ask_questions_fresh_dragracer.yaml"
QUESTIONS = yaml.safe_load(FRESH.read_text())["questions"]
# The honesty target of issue 16: at most one confident wrong answer in 44.
MAX_WRONG = 1


def outcome(q: dict, analyst: Asker, mesh: RealMesh) -> str:
    answer = analyst.ask(q["question"])
    gold = run_gold(mesh, q["gold"]) if q.get("gold") else None
    if BENCH_ASK.status_of(answer) == "answered" and gold is not None:
        return "exact" if same_rows(answer.rows, gold) else "wrong"
    return BENCH_ASK.grade(q, answer, gold)


@pytest.fixture(scope="module")
def outcomes(real_mesh: RealMesh) -> dict[str, Counter]:
    analyst = Asker(real_mesh.lake, provider="offline")
    got = {"fresh-dev": Counter(), "fresh-test": Counter()}
    for i, q in enumerate(QUESTIONS):
        half = "fresh-dev" if i % 2 == 0 else "fresh-test"
        result = outcome(q, analyst, real_mesh)
        got[half][result] += 1
        if half == "fresh-dev" and result != "exact":
            print(f"fresh-dev {result}: {q['question']}")
    print({half: dict(c) for half, c in got.items()})
    return got


def test_the_gold_of_every_answerable_question_has_rows(real_mesh: RealMesh):
    for q in QUESTIONS:
        if q.get("gold"):
            rows = run_gold(real_mesh, q["gold"])
            assert rows and any(v is not None for row in rows for v in row), q["question"]


def test_at_most_one_confident_wrong_answer(outcomes: dict[str, Counter]):
    wrong = sum(c["wrong"] for c in outcomes.values())
    assert wrong <= MAX_WRONG, outcomes
