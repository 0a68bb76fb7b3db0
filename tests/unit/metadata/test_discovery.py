from pathlib import Path

import numpy as np
import pytest
import yaml

from dagster_project.ai.openai_provider import OpenAIProvider
from dagster_project.checks.quality.companions import discover_contracts
from dagster_project.metadata.discovery import (
    SemanticIndex,
    build_entries,
    load_vectors,
    mesh_index,
)
from dagster_project.metadata.semantics import load_semantic_layer
from tests.factories import bench_module
from tests.openai_server import FakeOpenAI, fake_openai

HARNESS = bench_module("discovery")  # the bench's judge, mean_reciprocal_rank, shares_word

QUERIES = Path(__file__).resolve().parents[3] / "bench" / "discovery_queries.yaml"


@pytest.fixture(scope="module")
def entries():
    contracts = discover_contracts()
    return build_entries(contracts, load_semantic_layer(contracts=contracts))


@pytest.fixture(scope="module")
def index(entries):
    return SemanticIndex(entries)


@pytest.fixture(scope="module")
def queries():
    return yaml.safe_load(QUERIES.read_text())["queries"]


def ids(hits):
    return [h.entry.id for h in hits]


def test_every_product_column_and_metric_is_indexed(entries):
    contracts = discover_contracts()
    kinds = {e.id.split(":")[0] for e in entries}
    assert kinds == {"product", "column", "metric"}
    assert sum(e.kind == "column" for e in entries) == sum(len(c.columns) for c in contracts)


def test_the_query_set_is_what_it_claims(entries, queries):
    main = [q for q in queries if not q.get("holdout")]
    by_id = {e.id: e for e in entries}
    assert len(main) >= 30
    assert all(q["target"] in by_id for q in queries)
    for q in queries:
        assert bool(q.get("no_overlap")) == (
            not HARNESS.shares_word(q["query"], by_id[q["target"]])
        ), q
    assert sum(1 for q in main if q.get("no_overlap")) * 3 >= len(main)


def test_discovery_reaches_the_target_mrr_offline(index, entries, queries):
    main = [q for q in queries if not q.get("holdout")]
    judged = HARNESS.judge(lambda q, k: ids(index.search(q, k=k)), entries, main)
    assert HARNESS.mean_reciprocal_rank(judged) >= 0.9
    assert HARNESS.mean_reciprocal_rank([j for j in judged if j.no_overlap]) >= 0.9


def test_hits_say_why_they_matched(index):
    (revenue, *_) = index.search("turnover by branch")
    assert revenue.entry.id == "metric:revenue"
    assert "synonym 'turnover' (metric revenue, semantic layer)" in revenue.reasons
    assert any("broken down by branch" in r for r in revenue.reasons)
    (email, *_) = index.search("custmer emial adress")
    assert email.entry.id == "column:customers/customer_profiles.email"
    assert any("similar wording" in r or "matches" in r for r in email.reasons)


def test_kinds_filter_and_empty_queries(index):
    hits = index.search("customer", k=5, kinds=["metric"])
    assert hits and {h.entry.kind for h in hits} == {"metric"}
    assert index.search("the of and") == []
    assert index.search("zzqx") == [] or all(h.score < 0.3 for h in index.search("zzqx"))


def _vector(text: str) -> list[float]:
    rng = np.random.default_rng(abs(hash(text.split()[0].lower())) % 2**32)
    return rng.normal(size=8).tolist()


def test_openai_embeddings_are_used_and_cached(entries, mesh_home, monkeypatch):
    with fake_openai(FakeOpenAI(embedding=_vector)) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        monkeypatch.setenv("MESH_LLM_MAX_RETRIES", "0")
        provider = OpenAIProvider()
        first = mesh_index(provider, mesh_home)
        assert first.model_label == "text-embedding-3-small"
        calls = len(fake.bodies("/embeddings"))
        second = mesh_index(OpenAIProvider(), mesh_home)
        second.search("revenue")
        assert len(fake.bodies("/embeddings")) == calls + 1  # only the query was embedded
        assert load_vectors(mesh_home, first.entries, "text-embedding-3-small") is not None
        fake.embedding_status = 500
        hits = second.search("turnover by branch")
    assert hits[0].entry.id == "metric:revenue"  # fell back to offline vectors for both sides
    assert second.model_label == "hashed-char-ngrams-v1"


def test_products_are_expanded_from_the_semantic_layer(entries):
    daily = next(e for e in entries if e.id == "product:sales/daily_sales")
    related = dict(daily.expansion)
    assert related["shop"] == "column store_id identifies entity store"  # an entity's synonym
    assert related["net_revenue"] == "column net_revenue"  # a column's name
    lead = next(e for e in entries if e.id == "metric:average_lead_time")
    assert ("vendor", "mentions entity supplier") in lead.expansion


def test_what_a_name_mentions_is_a_synonym_what_a_description_mentions_is_related(entries):
    plan = next(e for e in entries if e.id == "product:inventory/replenishment_plan")
    assert ("restocking", "mentions glossary term 'replenishment'") in plan.synonyms
    assert "restocking" not in dict(plan.expansion)
    lead = next(e for e in entries if e.id == "metric:average_lead_time")
    assert "vendor" not in dict(lead.synonyms)  # only its description names the supplier


def test_related_words_find_a_product_and_say_where_they_come_from(index):
    # Without what the semantic layer adds (related phrases, and the synonyms of what
    # the entries' names mention, such as net_revenue: turnover), the product is missed.
    plain = SemanticIndex(index.entries, use_synonyms=False, use_expansion=False, use_vectors=False)
    query = "turnover per shop per article per date"
    expanded = [h.entry.id for h in index.search(query, k=10, kinds=["product"])]
    assert expanded[0] == "product:sales/daily_sales"
    assert ids(plain.search(query, k=3, kinds=["product"]))[0] != "product:sales/daily_sales"
    (hit,) = index.search(query, k=1, kinds=["product"])
    assert "related word shop (mentions entity store)" in hit.reasons
    assert "related word turnover (mentions glossary term 'revenue')" in hit.reasons


def test_a_table_query_finds_the_product_and_a_value_query_its_column(index):
    # The same words, asked of a table or of a value (own queries, not tuned on).
    hits = index.search("which table has the brand of each product", k=3)
    table = ids(hits)
    value = ids(index.search("brand of each product", k=3))
    assert table[0] == "product:inventory/products"
    assert "holds inventory/products.brand, which matches" in hits[0].reasons
    assert value[0] == "column:inventory/products.brand"
    assert "product:inventory/products" in value  # folded just below its best column


def test_a_column_beats_its_metric_unless_an_aggregate_is_asked_for(index):
    assert ids(index.search("regular shelf price", k=1)) == ["column:inventory/products.list_price"]
    assert ids(index.search("average regular shelf price", k=1)) == ["metric:average_list_price"]
    assert ids(index.search("orders", k=1)) == ["metric:orders"]  # named: not its column


def test_a_column_name_many_products_share_weighs_less(index):
    weight = {e.id: w for e, w in zip(index.entries, index.commonness, strict=True)}
    assert weight["column:sales/insights.period_start"] < 0.9  # four insights products
    assert weight["column:sales/order_lines.payment_type"] == 1.0
    # An anomalies companion's copy of its parent's column is not another product's.
    assert weight["column:sales/order_lines.unit_price"] == 1.0


def test_products_are_expanded_from_what_they_are_built_from(entries, index):
    by_id = {e.id: e for e in entries}
    companion = dict(by_id["product:sales/order_lines_anomalies"].expansion)
    parent = by_id["product:sales/order_lines"]
    contract_synonym = next(s for s, src in parent.synonyms if src == "contract")
    assert companion[contract_synonym] == "flags rows of sales/order_lines"
    layer = load_semantic_layer(contracts=discover_contracts())
    headline = layer.metrics[layer.insights_spec("inventory").metrics[0]]
    insights = dict(by_id["product:inventory/insights"].expansion)
    assert insights[headline.title] == f"reports metric {headline.name}"


def test_a_word_the_index_does_not_know_is_read_by_its_known_parts(index):
    assert "stockroom" not in index.fields.bm25.idf
    assert {"stock", "room"} <= set(index._alternatives("stockroom"))
    assert "phone" in index._alternatives("telephone")


def test_known_values_of_a_dimension_find_its_column(entries):
    contracts = discover_contracts()
    layer = load_semantic_layer(contracts=contracts)
    query, column = "frozen or dairy", "column:inventory/products.category"
    assert column not in ids(SemanticIndex(entries).search(query, k=1))
    valued = build_entries(contracts, layer, {"category": ["Dairy", "Frozen", "Bakery"]})
    hit = SemanticIndex(valued).search(query, k=1)[0]
    assert hit.entry.id == column
    assert "context matches dairy, frozen" in hit.reasons


def test_words_after_a_grouping_cue_weigh_less_than_what_is_wanted(index):
    from dagster_project.metadata.discovery import _breakdown_terms

    assert _breakdown_terms("revenue by region", ["revenue", "region"]) == {"region"}
    assert _breakdown_terms("by region", ["region"]) == set()  # nothing named before it
    assert _breakdown_terms("stock per store", ["stock", "store"]) == set()  # a grain
    # Asked for a value broken down by a column, the value's entry ranks first.
    assert ids(index.search("revenue by region", k=1)) == ["metric:revenue"]
    assert ids(index.search("region by revenue", k=1)) != ["metric:revenue"]
