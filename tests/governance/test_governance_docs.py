import pytest

from dagster_project.ai import OfflineProvider
from dagster_project.metadata.semantics import load_semantic_layer
from governance.docs import (
    check_doc,
    doc_texts,
    document_product,
    known_names,
    product_facts,
    ungrounded_names,
    write_offline,
)


@pytest.fixture(scope="module")
def layer(demo_contracts):
    return load_semantic_layer(contracts=demo_contracts.values())


@pytest.fixture(scope="module")
def known(demo_contracts, layer):
    return known_names(demo_contracts.values(), layer)


LINEAGE = [
    ("sales/order_lines", "sales/daily_sales"),
    ("sales/order_lines", "customers/customer_segments"),
]


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        ("Join sales/order_lines to sales/stores on `store_id`.", []),
        ("Filter on order_date; gift_card is a payment_type.", []),
        ("Join with sales/returns on `return_reason`.", ["return_reason", "sales/returns"]),
        ("The `revenue_total` column of the orders table.", ["revenue_total"]),
        ("Observed from 2025-03-01 to 2025-03-14, `quantity * unit_price`.", []),
    ],
)
def test_grounding_finds_names_that_do_not_exist(known, text, unknown):
    assert ungrounded_names(text, known) == unknown


def test_offline_docs_are_deterministic_and_grounded_for_every_product(
    demo_contracts, layer, known
):
    for contract in demo_contracts.values():
        facts = product_facts(contract, None, layer, LINEAGE)
        doc = write_offline(facts)
        assert doc == write_offline(facts)
        assert [c.name for c in doc.columns] == contract.column_names
        assert check_doc(doc, facts, known) == []
        assert all(c.description for c in doc.columns)
    order_lines = write_offline(
        product_facts(demo_contracts["sales/order_lines"], None, layer, LINEAGE)
    )
    assert "Feeds customers/customer_segments, sales/daily_sales." in order_lines.usage_notes
    assert "`revenue` (sum of `net_amount`)" in order_lines.usage_notes
    assert order_lines.example_questions[0].startswith("What is the revenue by")


def test_a_doc_missing_columns_or_naming_ghosts_is_rejected(demo_contracts, layer, known):
    facts = product_facts(demo_contracts["sales/stores"], None, layer, [])
    doc = write_offline(facts)
    short = doc.model_copy(update={"columns": doc.columns[:2]})
    assert "are not the product's" in check_doc(short, facts, known)[0]
    ghost = doc.model_copy(update={"caveats": "See `store_manager`."})
    assert check_doc(ghost, facts, known) == ["names that do not exist: store_manager"]


def test_human_text_wins_and_generated_fields_are_named(demo_contracts, layer, known):
    contract = demo_contracts["sales/stores"]
    documented = document_product(
        OfflineProvider(), contract, product_facts(contract, None, layer, []), known
    )
    assert documented.doc.description == contract.description
    assert documented.doc.usage_notes == contract.usage
    assert documented.generated_fields[""] == [
        "caveats",
        "example_questions",
    ]  # no limitations, no questions
    assert documented.doc.columns[0].description == contract.columns[0].description
    assert "description" not in documented.generated_fields["store_id"]
    assert documented.provenance.provider == "offline"
    assert all(t is not None for t in doc_texts(documented.doc))
