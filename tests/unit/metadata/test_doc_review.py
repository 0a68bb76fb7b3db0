import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import dagster_project.app.cli.metadata as cli_metadata
from dagster_project.app.cli import app
from dagster_project.core.contracts import load_contract
from dagster_project.metadata.doc_review import (
    ACCEPTED,
    PENDING,
    REJECTED,
    Suggestion,
    SuggestionStore,
    apply_to_contract,
    bump_patch,
    suggest,
)
from tests.factories import REPO

PROVENANCE = {"provider": "offline", "model": "meshwork-templates-v1", "inputs_hash": "sha256:x"}
STORES = REPO / "domains" / "sales" / "contracts" / "stores.odcs.yaml"


@pytest.fixture
def stores_copy(tmp_path) -> Path:
    path = tmp_path / "stores.odcs.yaml"
    shutil.copy(STORES, path)
    return path


def test_suggestions_fill_only_empty_fields_and_stay_valid(demo_contracts, make_contract):
    stores = demo_contracts["sales/stores"]
    found = suggest(
        stores,
        {
            "description.usage": "Join on store_id.",  # the contract has usage: kept
            "description.limitations": "Refreshed weekly.",
            "context.questions": ["How many stores per region?"],
            "column:region": "Another text",  # a person described region: kept
        },
        PROVENANCE,
    )
    assert {s.field for s in found} == {"description.limitations", "context.questions"}
    blank = make_contract([{"name": "widget_id", "logicalType": "integer", "primaryKey": True}])
    (column,) = suggest(blank, {"column:widget_id": "Identifier of the widget."}, PROVENANCE)
    assert column.label == "shop/widgets.widget_id description"


def test_accepting_writes_into_the_contract_keeping_its_layout(stores_copy):
    before = stores_copy.read_text()
    suggestion = Suggestion(
        "sales/stores", "context.questions", ["How many stores per region?"], PROVENANCE
    )
    contract = apply_to_contract(stores_copy, suggestion)
    after = stores_copy.read_text()
    assert contract.version == bump_patch(load_contract(STORES).version) == "1.0.1"
    assert "logicalTypeOptions: {exclusiveMinimum: 0}" in after  # flow style kept
    assert after.count("\n") > before.count("\n")
    document = yaml.safe_load(after)
    assert document["schema"][0]["context"]["verifiedStatements"] == [
        {"question": "How many stores per region?"}
    ]
    limits = Suggestion("sales/stores", "description.limitations", "Counted weekly.", PROVENANCE)
    assert apply_to_contract(stores_copy, limits).limitations == "Counted weekly."


def test_human_text_is_never_replaced(stores_copy):
    before = stores_copy.read_text()
    usage = Suggestion("sales/stores", "description.usage", "Generated usage.", PROVENANCE)
    with pytest.raises(ValueError, match="written by a person"):
        apply_to_contract(stores_copy, usage)
    assert stores_copy.read_text() == before


def test_the_store_keeps_decisions(mesh_home):
    store = SuggestionStore(mesh_home)
    first = Suggestion("sales/stores", "description.limitations", "A", PROVENANCE)
    store.merge("sales/stores", [first])
    store.decide(first, REJECTED, "2025-01-01T00:00:00+00:00")
    assert (
        store.merge(
            "sales/stores", [Suggestion("sales/stores", "description.limitations", "A", PROVENANCE)]
        )[0].status
        == REJECTED
    )
    changed = store.merge(
        "sales/stores", [Suggestion("sales/stores", "description.limitations", "B", PROVENANCE)]
    )
    assert (changed[0].status, changed[0].value) == (PENDING, "B")  # a new proposal is asked again
    assert store.products() == ["sales/stores"]


def _pending(mesh_home) -> SuggestionStore:
    store = SuggestionStore(mesh_home)
    store.merge(
        "sales/stores",
        [
            Suggestion("sales/stores", "description.limitations", "Counted weekly.", PROVENANCE),
            Suggestion("sales/stores", "context.questions", ["How many stores?"], PROVENANCE),
        ],
    )
    return store


def test_mesh_docs_review_accept_edit_reject(mesh_home, stores_copy, monkeypatch):
    store = _pending(mesh_home)
    monkeypatch.setattr(cli_metadata, "_contract_paths", lambda: {"sales/stores": stores_copy})
    runner = CliRunner()
    listed = runner.invoke(app, ["docs", "review", "--list"])
    assert listed.exit_code == 0 and "Counted weekly." in listed.output
    # Edit the first (limitations), reject the second (questions).
    result = runner.invoke(app, ["docs", "review"], input="e\nCounted every Sunday.\nr\n")
    assert result.exit_code == 0, result.output
    contract = load_contract(stores_copy)
    assert contract.limitations == "Counted every Sunday."
    assert "context" not in contract.document["schema"][0]
    statuses = {s.field: s.status for s in store.load("sales/stores")}
    assert statuses == {"description.limitations": "edited", "context.questions": REJECTED}
    assert runner.invoke(app, ["docs", "review"]).output.startswith("No pending suggestions")


def test_mesh_docs_review_accept_all(mesh_home, stores_copy, monkeypatch):
    store = _pending(mesh_home)
    monkeypatch.setattr(cli_metadata, "_contract_paths", lambda: {"sales/stores": stores_copy})
    result = CliRunner().invoke(app, ["docs", "review", "--accept-all"])
    assert result.exit_code == 0, result.output
    assert {s.status for s in store.load("sales/stores")} == {ACCEPTED}
    contract = load_contract(stores_copy)
    assert contract.version == "1.0.2"  # two accepted changes, two patch bumps
    assert (
        contract.document["schema"][0]["context"]["verifiedStatements"][0]["question"]
        == "How many stores?"
    )


def test_mesh_search_prints_ranked_results_with_reasons(mesh_home):
    runner = CliRunner()
    result = runner.invoke(app, ["search", "turnover by branch", "--json", "-k", "3"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert hits[0]["id"] == "metric:revenue" and hits[0]["reasons"]
    columns = runner.invoke(app, ["search", "shopper e-mail", "--kind", "column", "--json"])
    assert json.loads(columns.output)[0]["id"] == "column:customers/customer_profiles.email"
    table = runner.invoke(app, ["search", "turnover by branch", "-k", "1"])
    assert table.exit_code == 0 and "Revenue (metric)" in table.output
    assert runner.invoke(app, ["search", "x", "--kind", "table"]).exit_code != 0
