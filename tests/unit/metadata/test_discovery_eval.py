"""The discovery evaluation set is what its header claims: the split follows its fixed rule,
the no-shared-word flags are true, and enough queries share no word with their target."""

from pathlib import Path

import pytest
import yaml

from dagster_project.checks.quality.companion_contracts import discover_contracts
from dagster_project.metadata.discovery import build_entries
from dagster_project.metadata.semantics import load_semantic_layer
from tests.factories import bench_module

shares_word = bench_module("discovery").shares_word  # the bench's harness

EVAL = Path(__file__).resolve().parents[3] / "bench" / "discovery_eval.yaml"


@pytest.fixture(scope="module")
def queries():
    return yaml.safe_load(EVAL.read_text())["queries"]


def test_the_eval_set_is_large_and_a_third_shares_no_word(queries):
    contracts = discover_contracts()
    by_id = {e.id: e for e in build_entries(contracts, load_semantic_layer(contracts=contracts))}
    assert len(queries) >= 60
    assert len({q["query"] for q in queries}) == len(queries)
    for q in queries:
        assert q["target"] in by_id, q
        assert q["no_overlap"] == (not shares_word(q["query"], by_id[q["target"]])), q
    assert sum(q["no_overlap"] for q in queries) * 3 >= len(queries)


def test_the_split_follows_the_fixed_rule(queries):
    seen = {True: 0, False: 0}
    for q in queries:
        expected = "dev" if seen[q["no_overlap"]] % 2 == 0 else "test"
        assert q["split"] == expected, q
        seen[q["no_overlap"]] += 1


def test_the_own_queries_are_of_the_kind_they_claim():
    own = yaml.safe_load((EVAL.parent / "discovery_own.yaml").read_text())["queries"]
    contracts = discover_contracts()
    by_id = {e.id: e for e in build_entries(contracts, load_semantic_layer(contracts=contracts))}
    assert len(own) == 20
    for q in own:
        assert q["kind"] in {"shared", "none", "table"}, q
        assert (q["kind"] != "none") == shares_word(q["query"], by_id[q["target"]]), q
        assert q["kind"] != "table" or q["target"].startswith("product:"), q
