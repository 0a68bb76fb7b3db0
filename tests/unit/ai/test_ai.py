import time

import dagster as dg
import numpy as np
import pytest
from pydantic import BaseModel

from dagster_project.ai import OfflineProvider, Task, get_provider
from dagster_project.ai.openai_provider import OpenAIProvider
from dagster_project.ai.resource import AIResource
from dagster_project.ai.text import BM25, meaning_vectors, stem, terms, token_shares
from tests.openai_server import FakeOpenAI, fake_openai


class Summary(BaseModel):
    title: str
    bullet_points: list[str]


def summary_task(check=None) -> Task[Summary]:
    return Task(
        name="summary",
        instructions="Summarise the product.",
        inputs={"product": "sales/stores", "rows": 12},
        output=Summary,
        offline=lambda facts: {
            "title": facts["product"],
            "bullet_points": [f"{facts['rows']} rows"],
        },
        check=check,
    )


@pytest.fixture(autouse=True)
def no_ai_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MESH_AI_PROVIDER", "MESH_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)


def openai_at(fake: FakeOpenAI, **kwargs) -> OpenAIProvider:
    return OpenAIProvider(base_url=fake.url, api_key="test-key", max_retries=0, **kwargs)


def test_provider_choice_follows_the_environment(monkeypatch):
    assert isinstance(get_provider(), OfflineProvider)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert isinstance(get_provider(), OpenAIProvider)
    monkeypatch.setenv("MESH_AI_PROVIDER", "offline")
    assert isinstance(get_provider(), OfflineProvider)
    with pytest.raises(ValueError, match="unknown AI provider"):
        get_provider("magic")


def test_offline_generation_is_grounded_and_carries_provenance():
    first = OfflineProvider().generate(summary_task())
    second = OfflineProvider().generate(summary_task())
    assert first.value == Summary(title="sales/stores", bullet_points=["12 rows"])
    assert first.value == second.value
    assert first.provenance.provider == "offline"
    assert first.provenance.inputs_hash == second.provenance.inputs_hash
    assert first.provenance.inputs_hash.startswith("sha256:")
    assert "offline" in first.provenance.label()


def test_openai_client_answers_through_the_wire_format(monkeypatch):
    monkeypatch.setenv("MESH_LLM_MODEL", "tiny-model")
    reply = '{"title": "Stores", "bullet_points": ["one row per store"]}'
    with fake_openai(FakeOpenAI(chat=lambda request: reply)) as fake:
        provider = openai_at(fake)
        result = provider.generate(summary_task())
    assert result.value.title == "Stores"
    assert result.provenance.provider == "openai"
    assert result.provenance.model == "tiny-model"
    assert result.provenance.fallback is None
    (request,) = fake.bodies("/chat/completions")
    assert request["model"] == "tiny-model"
    assert request["response_format"]["type"] == "json_schema"
    assert '"rows": 12' in request["messages"][1]["content"]
    meta = provider.usage_metadata()
    assert (meta["ai/prompt_tokens"], meta["ai/completion_tokens"], meta["ai/calls"]) == (
        120,
        30,
        1,
    )


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("this is not json", "malformed model output"),
        ('{"title": "Stores"}', "malformed model output: bullet_points"),
        ((500, {"error": {"message": "boom"}}), "endpoint error: InternalServerError"),
        ((401, {"error": {"message": "bad key"}}), "endpoint error: AuthenticationError"),
        ((400, {"error": {"message": "bad request"}}), "endpoint error: BadRequestError"),
    ],
)
def test_bad_answers_and_errors_fall_back_to_offline_with_a_warning(reply, reason):
    with fake_openai(FakeOpenAI(chat=lambda request: reply)) as fake:
        provider = openai_at(fake)
        result = provider.generate(summary_task())
    assert result.value == Summary(title="sales/stores", bullet_points=["12 rows"])
    assert result.provenance.provider == "offline"
    assert result.provenance.fallback.startswith(reason)
    assert provider.usage.fallbacks == 1
    assert reason.split(":")[0] in provider.usage.warnings[0]


def test_servers_without_json_schema_get_json_object():
    def picky(request):
        if request["response_format"]["type"] == "json_schema":
            return 400, {"error": {"message": "response_format json_schema not supported"}}
        assert "JSON schema" in request["messages"][0]["content"]
        return '{"title": "Stores", "bullet_points": []}'

    with fake_openai(FakeOpenAI(chat=picky)) as fake:
        result = openai_at(fake).generate(summary_task())
    assert (result.provenance.provider, result.value.title) == ("openai", "Stores")
    assert [b["response_format"]["type"] for b in fake.bodies("/chat/completions")] == [
        "json_schema",
        "json_object",
    ]


def test_ungrounded_answer_falls_back():
    reply = '{"title": "Shops", "bullet_points": ["see table shop_master"]}'

    def check(value: Summary) -> list[str]:
        return ["unknown name shop_master"] if "shop_master" in str(value) else []

    with fake_openai(FakeOpenAI(chat=lambda request: reply)) as fake:
        result = openai_at(fake).generate(summary_task(check))
    assert result.provenance.provider == "offline"
    assert "ungrounded" in result.provenance.fallback


def test_timeouts_fall_back_and_a_dead_endpoint_is_called_no_more():
    def slow(request):
        time.sleep(1.0)
        return '{"title": "late", "bullet_points": []}'

    with fake_openai(FakeOpenAI(chat=slow)) as fake:
        provider = openai_at(fake, timeout=0.2)
        results = [provider.generate(summary_task()) for _ in range(4)]
        calls = len(fake.bodies("/chat/completions"))
    assert all(r.provenance.provider == "offline" for r in results)
    assert "APITimeoutError" in results[0].provenance.fallback
    assert calls == 2  # then the endpoint is considered down for this provider's life
    assert "disabled" in results[-1].provenance.fallback


def test_openai_embeddings_and_their_fallback():
    with fake_openai(FakeOpenAI(embedding=lambda text: [3.0, 4.0, 0.0])) as fake:
        provider = openai_at(fake)
        result = provider.embed(["stores", "order lines"])
        fake.embedding_status = 503
        fallback = provider.embed(["stores"])
    assert result.provider == "openai"
    np.testing.assert_allclose(result.vectors, [[0.6, 0.8, 0.0], [0.6, 0.8, 0.0]], rtol=1e-6)
    assert provider.usage.embedding_tokens == 3
    assert fallback.provider == "offline"
    assert "InternalServerError" in fallback.fallback


def test_offline_embeddings_are_stable_and_lexical():
    vectors = OfflineProvider().embed(["customer email", "customer e-mail", "store region"]).vectors
    assert vectors.shape[0] == 3
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    again = OfflineProvider().embed(["customer email"]).vectors
    np.testing.assert_array_equal(again[0], vectors[0])


def test_text_tools():
    assert stem("stores") == stem("store") == "store"
    assert stem("categories") == "category"
    assert terms("What is the revenue per store_id?") == ["revenue", "store", "id"]
    bm25 = BM25([["store", "region"], ["customer", "email"], ["store", "store", "name"]])
    scores = bm25.scores({"store": 1.0})
    assert scores[1] == 0 and scores[2] > scores[0] > 0


def test_a_word_every_text_of_a_collection_holds_weighs_less_in_its_meaning_vectors():
    texts = ["weekly revenue report", "weekly stock report", "weekly customer report"]
    shares = token_shares(texts)
    assert max(shares.values()) == 1.0 and min(shares.values()) == pytest.approx(1 / 3)
    plain, weighed = meaning_vectors(texts), meaning_vectors(texts, shares)
    np.testing.assert_allclose(np.linalg.norm(weighed, axis=1), 1.0, rtol=1e-5)
    # What they share ("weekly ... report") no longer makes them look alike.
    assert weighed[0] @ weighed[1] < plain[0] @ plain[1] - 0.1


def test_ai_resource_puts_token_usage_into_asset_metadata():
    reply = '{"title": "Stores", "bullet_points": []}'

    @dg.asset
    def summarised(ai: AIResource) -> dg.MaterializeResult:
        provider = ai.get_provider()
        provider.generate(summary_task())
        return dg.MaterializeResult(metadata=provider.usage_metadata())

    with (
        fake_openai(FakeOpenAI(chat=lambda request: reply)) as fake,
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.setenv("OPENAI_BASE_URL", fake.url)
        mp.setenv("MESH_LLM_MAX_RETRIES", "0")
        result = dg.materialize([summarised], resources={"ai": AIResource()})
    (materialization,) = result.asset_materializations_for_node("summarised")
    meta = materialization.metadata
    assert meta["ai/provider"].value == "openai"
    assert meta["ai/total_tokens"].value == 150
