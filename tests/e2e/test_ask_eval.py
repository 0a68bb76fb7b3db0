"""The ask eval set (bench/ask_questions.yaml) on a small simulated mesh built by the
real refresh: execution accuracy must stay >= 0.9."""

import pytest

from dagster_project.ask import Asker
from dagster_project.lake.storage import Lake
from tests.factories import bench_module


@pytest.fixture(scope="module")
def bench_and_lake(tmp_path_factory):
    home = tmp_path_factory.mktemp("ask-mesh")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MESH_HOME", str(home))
        mp.delenv("MESH_STORAGE_OPTIONS", raising=False)
        bench = bench_module("ask")
        bench.build_mesh(home, days=60, scale=5000)
        yield bench, Lake()


def test_eval_set_is_big_enough_and_covers_every_kind(bench_and_lake):
    bench, _ = bench_and_lake
    questions = bench.load_questions()
    kinds = {q["kind"] for q in questions}
    assert len([q for q in questions if q.get("gold")]) >= 40
    assert {"total", "ranking", "trend", "comparison", "share", "per_order"} <= kinds
    assert {"filter", "cross_domain", "unanswerable"} <= kinds


def test_execution_accuracy_is_at_least_0_9(bench_and_lake):
    bench, lake = bench_and_lake
    summary = bench.evaluate(Asker(lake, provider="offline"), lake, bench.load_questions())
    assert summary["accuracy"] >= 0.9, summary["failed"]
    assert summary["questions"] >= 42


def test_a_wrong_answer_counts_as_wrong(bench_and_lake):
    bench, lake = bench_and_lake
    wrong = [
        {
            "kind": "total",
            "question": "total revenue",
            "gold": ('SELECT SUM(quantity) FROM "sales"."order_lines"'),
        }
    ]
    assert bench.evaluate(Asker(lake, provider="offline"), lake, wrong)["accuracy"] == 0


def test_the_held_apart_halves_are_balanced_and_their_gold_sql_runs(bench_and_lake):
    bench, lake = bench_and_lake
    dev, test = (bench.load_questions(path) for path in bench.HALVES)
    assert len(dev) + len(test) >= 200
    assert {q["kind"] for q in dev} == {q["kind"] for q in test}
    assert {"unanswerable", "ambiguous", "superlative", "time_anchor"} <= {q["kind"] for q in dev}
    for q in dev + test:
        if q.get("gold"):
            assert bench.run_gold(lake, q["gold"]) is not None, q["question"]
        else:
            assert q["expect"] in {"clarify", "unanswerable"}


def test_the_dev_half_is_answered_exactly_and_almost_never_wrongly(bench_and_lake):
    bench, lake = bench_and_lake
    asker = Asker(lake, provider="offline")
    summary = bench.evaluate(asker, lake, bench.load_questions(bench.HALVES[0]))
    assert summary["exact_rate"] >= 0.9, summary["failed"]
    assert summary["wrong"] <= 2, [
        r["question"] for r in summary["results"] if r["outcome"] == "wrong"
    ]
