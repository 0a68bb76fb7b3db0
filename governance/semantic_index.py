"""The `governance/semantic_index` product: what discovery searches, as a table.

One row per product, column and metric of the mesh with the text it is found by (names,
synonyms with their source, description, context). Building it also embeds every entry
with the configured provider and keeps the vectors for `mesh search` and the Python API
(`dagster_project.metadata.discovery.search`), so a search embeds only its query.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from dagster_project import (
    AIProvider,
    Contract,
    MeshSettings,
    SemanticIndex,
    SemanticLayer,
    build_entries,
    entries_hash,
    load_vectors,
    save_vectors,
)

SAMPLE_QUERIES = ("revenue by region", "customer email", "stock on hand")


def build_index(
    contracts: list[Contract], layer: SemanticLayer, provider: AIProvider, settings: MeshSettings
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The index table and a summary (entry counts, vector model, sample searches)."""
    entries = build_entries(contracts, layer)
    # The same entries as at the last build: their kept embeddings, none computed again.
    vectors = load_vectors(settings, entries, provider.embedding_model)
    model = provider.embedding_model if vectors is not None else None
    index = SemanticIndex(entries, provider=provider, vectors=vectors, vector_model=model)
    if vectors is None:
        save_vectors(settings, entries, index)
    digest = entries_hash(entries)
    frame = pl.DataFrame(
        [{**e.to_row(), "vector_model": index.model_label, "index_hash": digest} for e in entries]
    )
    samples = {q: [h.entry.id for h in index.search(q, k=3)] for q in SAMPLE_QUERIES}
    summary = {
        "entries": len(entries),
        "by_kind": frame.group_by("kind").len().sort("kind").to_dicts(),
        "vector_model": index.model_label,
        "index_hash": digest,
        "sample_searches": samples,
    }
    return frame, summary
