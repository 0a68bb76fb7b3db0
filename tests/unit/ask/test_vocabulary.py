"""The values and latest days a question is matched against are read from the lake once
per change of it: kept in MESH_HOME/cache under a fingerprint of the products' newest
commits, read again after any commit, and never trusted when the file is torn."""

from datetime import date

import polars as pl
import pytest

from dagster_project.ask import Asker
from dagster_project.ask import vocabulary as vocab
from dagster_project.metadata.semantics import load_semantic_layer
from tests.small_mesh import write_small_mesh


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer()


@pytest.fixture
def reads(monkeypatch) -> list[int]:
    """One entry per scan of the lake for the vocabulary."""
    calls: list[int] = []
    real = vocab.read_vocabulary
    monkeypatch.setattr(vocab, "read_vocabulary", lambda *a: calls.append(1) or real(*a))
    return calls


def test_an_unchanged_lake_is_read_once_and_a_commit_is_seen(lake, layer, demo_contracts, reads):
    data = write_small_mesh(lake, demo_contracts)
    values, anchors = vocab.vocabulary(layer, lake)
    assert "North" in values["region"] and anchors["sales/order_lines"] == date(2025, 4, 1)
    assert vocab.vocabulary(layer, lake) == (values, anchors) and len(reads) == 1
    stores = data["sales/stores"].with_columns(
        region=pl.when(pl.col("store_id") == 4).then(pl.lit("Islands")).otherwise("region")
    )
    lake.write(demo_contracts["sales/stores"], stores)  # a refresh adds a region
    again, _ = vocab.vocabulary(layer, lake)
    assert "Islands" in again["region"] and len(reads) == 2


def test_a_torn_cache_is_read_again_not_trusted(lake, layer, demo_contracts, reads):
    write_small_mesh(lake, demo_contracts)
    expected = vocab.vocabulary(layer, lake)
    cache = lake.settings.uri(*vocab.CACHE_FILE)
    text = lake.settings.files.read_text(cache)
    lake.settings.files.write_text(cache, text[: len(text) // 2])
    assert vocab.vocabulary(layer, lake) == expected and len(reads) == 2


def test_a_new_value_is_matched_by_the_next_question(lake, layer, demo_contracts):
    data = write_small_mesh(lake, demo_contracts)
    asker = Asker(lake, layer, role="analyst", provider="offline")
    assert asker.ask("revenue by region").status == "answered"  # the vocabulary is read
    stores = data["sales/stores"].with_columns(
        region=pl.when(pl.col("store_id") == 4).then(pl.lit("Islands")).otherwise("region")
    )
    lake.write(demo_contracts["sales/stores"], stores)
    answer = Asker(lake, layer, role="analyst", provider="offline").ask("revenue in Islands")
    assert answer.status == "answered" and "Islands" in answer.sql, answer
