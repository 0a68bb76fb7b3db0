"""The generative governance products, materialized for real on a small mesh:
docs (offline and through the OpenAI wire format), semantic index, knowledge graph."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from dagster_project.ai.resource import AIResource
from dagster_project.assembly.locations import product_assets
from dagster_project.checks.quality.companions import discover_contracts
from dagster_project.core.contracts import validate_document
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import Lake
from dagster_project.metadata.doc_review import SuggestionStore, set_value
from dagster_project.metadata.semantics import load_semantic_layer
from governance.docs import known_names, ungrounded_names
from governance.generative import generative_products
from tests.openai_server import FakeOpenAI, fake_openai
from tests.small_mesh import write_small_mesh

ASSETS = {a.key.to_user_string(): a for a in product_assets(generative_products([]))}


@pytest.fixture(autouse=True)
def offline_by_default(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MESH_AI_PROVIDER", "MESH_AI_SHARE_SAMPLES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MESH_LLM_MAX_RETRIES", "0")


@pytest.fixture
def small_mesh(lake: Lake, demo_contracts) -> dict[str, pl.DataFrame]:
    return write_small_mesh(lake, demo_contracts)


def materialize(name: str, lake: Lake, **ai) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [ASSETS[name]],
        resources={"mesh": MeshResource(home=lake.settings.home), "ai": AIResource(**ai)},
    )
    assert result.success
    return result


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = result.get_asset_materialization_events()
    return event.materialization.metadata


def generated_texts(frame: pl.DataFrame) -> list[str]:
    """Only the fields the provider wrote (human text from contracts is not ours)."""
    texts = []
    for row in frame.to_dicts():
        for name in (f.strip() for f in (row["generated_fields"] or "").split(",")):
            if name:
                texts.append(row[name])
    return texts


def test_docs_cover_every_product_and_column_offline_and_stay_grounded(lake, small_mesh):
    result = materialize("governance/product_docs", lake)
    meta = metadata(result)
    frame = lake.read("governance/product_docs")
    contracts = discover_contracts()
    assert set(frame.filter(pl.col("kind") == "product")["product_key"]) == {
        c.key for c in contracts
    }
    assert frame.filter(pl.col("kind") == "column").height == sum(len(c.columns) for c in contracts)
    assert frame.filter(pl.col("description").str.strip_chars() == "").is_empty()
    assert meta["coverage_pct"].value == 100.0
    assert meta["ai/provider"].value == "offline"
    assert (
        set(frame["provider"]) == {"offline"}
        and frame["inputs_hash"].str.starts_with("sha256:").all()
    )
    known = known_names(contracts, load_semantic_layer(contracts=contracts))
    texts = generated_texts(frame)
    assert len(texts) > 100
    assert [t for t in texts if ungrounded_names(t, known)] == []
    # The docs reach the UI: Markdown per product and an observation on every product.
    assert "# sales/order_lines" in meta["docs/sales/order_lines"].value
    observed = {e.asset_key.to_user_string() for e in result.get_asset_observation_events()}
    assert observed == {c.key for c in contracts}
    page = Path(lake.settings.uri("docs", "customers", "customer_profiles.md")).read_text()
    assert "Loyalty-programme members, one row per customer." in page  # human text kept
    assert "*(generated)*" in page and "offline (meshwork-templates-v1)" in page


def test_human_text_is_kept_and_suggestions_stay_odcs_valid(lake, small_mesh, demo_contracts):
    materialize("governance/product_docs", lake)
    frame = lake.read("governance/product_docs")
    stores = frame.filter(pl.col("subject") == "sales/stores.region").row(0, named=True)
    assert stores["description"] == demo_contracts["sales/stores"].column("region").description
    assert "description" not in stores["generated_fields"]
    store = SuggestionStore(lake.settings)
    pending = store.pending()
    assert pending, (
        "every demo contract lacks canonical questions, so there is something to suggest"
    )
    contracts = {c.key: c for c in discover_contracts()}  # with generated companions
    for suggestion in pending:
        contract = contracts[suggestion.product]
        document = json.loads(json.dumps(contract.document, default=str))
        set_value(document, suggestion.field, suggestion.value)
        validate_document(document)
        assert suggestion.provenance["provider"] == "offline"
    fields = {s.field for s in pending}
    assert "context.questions" in fields and "description.usage" not in {
        s.field for s in pending if s.product == "sales/order_lines"
    }  # order_lines has human usage notes


def _grounded_reply(request: dict) -> str:
    """What a well-behaved model would answer: a doc for exactly the product's columns."""
    facts = json.loads(request["messages"][1]["content"])
    return json.dumps(
        {
            "description": f"Model-written summary of {facts['product']}.",
            "usage_notes": "Filter by day.",
            "caveats": "None known.",
            "example_questions": ["What changed last week?"],
            "columns": [
                {"name": c["name"], "description": f"Model text for {c['name']}."}
                for c in facts["columns"]
            ],
        }
    )


def test_docs_through_the_openai_wire_format_never_send_pii(lake, small_mesh, monkeypatch):
    with fake_openai(FakeOpenAI(chat=_grounded_reply)) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        result = materialize("governance/product_docs", lake)
        bodies = json.dumps(fake.bodies("/chat/completions"))
    frame = lake.read("governance/product_docs")
    assert set(frame["provider"]) == {"openai"}
    assert metadata(result)["ai/total_tokens"].value == 150 * frame["product_key"].n_unique()
    gen = frame.filter(pl.col("subject") == "sales/order_lines").row(0, named=True)
    assert gen["example_questions"] == "What changed last week?"  # no human questions there
    assert gen["usage_notes"].startswith("Revenue, basket")  # human usage notes kept
    profiles = small_mesh["customers/customer_profiles"]
    for column in ("full_name", "email", "phone"):
        for value in profiles[column]:
            assert value not in bodies, f"PII value of {column} was sent"
    for value in profiles["birth_date"]:
        assert value.isoformat() not in bodies
    assert "Porto" not in bodies and "Acme" not in bodies  # no sample values by default


def test_sample_values_are_sent_only_when_allowed_and_never_for_pii(lake, small_mesh, monkeypatch):
    with fake_openai(FakeOpenAI(chat=_grounded_reply)) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        materialize("governance/product_docs", lake, share_samples=True)
        bodies = json.dumps(fake.bodies("/chat/completions"))
    assert "Porto" in bodies and "Acme" in bodies
    for email in small_mesh["customers/customer_profiles"]["email"]:
        assert email not in bodies


def test_ungrounded_or_failing_model_answers_fall_back_to_offline(lake, small_mesh, monkeypatch):
    def invents(request: dict) -> str:
        reply = json.loads(_grounded_reply(request))
        reply["usage_notes"] = "Join with sales/returns on return_reason."
        return json.dumps(reply)

    with fake_openai(FakeOpenAI(chat=invents)) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        result = materialize("governance/product_docs", lake)
    frame = lake.read("governance/product_docs")
    assert set(frame["provider"]) == {"offline"}
    assert frame["fallback"].str.contains("names that do not exist: return_reason").all()
    assert metadata(result)["ai/fallbacks"].value == frame["product_key"].n_unique()
    with fake_openai(FakeOpenAI(chat=lambda r: (503, {"error": {"message": "down"}}))) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        materialize("governance/product_docs", lake)
        calls = len(fake.bodies("/chat/completions"))
    assert calls == 2  # the endpoint is given up on after two failures in a row
    assert set(lake.read("governance/product_docs")["provider"]) == {"offline"}


def test_semantic_index_publishes_every_entry(lake, small_mesh):
    result = materialize("governance/semantic_index", lake)
    frame = lake.read("governance/semantic_index")
    contracts = discover_contracts()
    columns = sum(len(c.columns) for c in contracts)
    layer = load_semantic_layer(contracts=contracts)
    assert frame.height == len(contracts) + columns + len(layer.metrics)
    assert set(frame["kind"]) == {"product", "column", "metric"}
    samples = metadata(result)["sample_searches"].value
    assert samples["revenue by region"][0] == "metric:revenue"


def test_knowledge_graph_edges_reports_and_join_evidence(lake, small_mesh):
    result = materialize("governance/knowledge_graph", lake)
    edges = lake.read("governance/knowledge_graph")
    relations = set(edges["relation"])
    assert {
        "feeds",
        "has_column",
        "owned_by",
        "key_of",
        "shares_key",
        "joins_with",
        "aggregates",
        "relates_to",
    } <= relations
    assert (
        edges.filter(
            (pl.col("relation") == "feeds")
            & (pl.col("source") == "product:sales/order_lines")
            & (pl.col("target") == "product:customers/customer_segments")
        ).height
        == 1
    )
    join = edges.filter(
        (pl.col("relation") == "joins_with")
        & (pl.col("source") == "column:sales/order_lines.store_id")
    ).row(0, named=True)
    assert join["target"] == "column:sales/stores.store_id"
    assert join["weight"] == 1.0 and "100.0% of 4 distinct" in join["evidence"]
    revenue = edges.filter(pl.col("source") == "metric:revenue")
    assert "column:sales/order_lines.net_amount" in revenue["target"].to_list()
    assert {"term", "owner", "entity", "metric", "domain"} <= set(edges["source_kind"]) | set(
        edges["target_kind"]
    )
    meta = metadata(result)
    for kind in ("graphml", "json", "png"):
        assert Path(meta[f"report_{kind}"].value).stat().st_size > 1000
    graph = json.loads(Path(meta["report_json"].value).read_text())
    assert {n["kind"] for n in graph["nodes"]} >= {
        "product",
        "column",
        "entity",
        "metric",
        "owner",
        "term",
    }
    assert Path(meta["report_png"].value).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_knowledge_graph_picture_is_redrawn_only_when_what_it_shows_changed(lake, small_mesh):
    png = Path(metadata(materialize("governance/knowledge_graph", lake))["report_png"].value)
    drawn = png.stat().st_mtime_ns
    materialize("governance/knowledge_graph", lake)
    assert png.stat().st_mtime_ns == drawn  # the same graph: the picture is kept
    png.with_name(png.name + ".sha256").write_text("another graph")
    materialize("governance/knowledge_graph", lake)
    assert png.stat().st_mtime_ns != drawn
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_semantic_index_reuses_the_embeddings_of_unchanged_entries(lake, small_mesh, monkeypatch):
    from dagster_project.ai.offline import OfflineProvider

    materialize("governance/semantic_index", lake)
    first = lake.read("governance/semantic_index")

    embed, sizes = OfflineProvider.embed, []

    def counted(self, texts, fallback=None):
        sizes.append(len(texts))
        return embed(self, texts, fallback)

    monkeypatch.setattr(OfflineProvider, "embed", counted)
    result = materialize("governance/semantic_index", lake)
    assert result.success and sizes and max(sizes) == 1  # only the sample queries
    assert lake.read("governance/semantic_index").equals(first)
    samples = metadata(result)["sample_searches"].value
    assert samples["revenue by region"][0] == "metric:revenue"
