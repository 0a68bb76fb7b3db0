"""`mesh search` finds every dragracer product by a plain query a fan would type."""

from __future__ import annotations

import pytest

from dagster_project.metadata.discovery import SemanticIndex, mesh_index
from tests.domains.dragracer.conftest import RealMesh

QUERIES = {
    "contestants": "queens of each season and where they come from",
    "episodes": "episodes and the day they aired",
    "appearances": "how each queen placed in every episode",
    "contestant_records": "track record of a queen: wins and bottoms",
    "season_summary": "who won each season and when it premiered",
    "insights": "what changed on the show lately",
}


@pytest.fixture(scope="module")
def index(real_mesh: RealMesh) -> SemanticIndex:
    return mesh_index()  # what `mesh search` searches, built once for these queries


@pytest.mark.parametrize(("product", "query"), sorted(QUERIES.items()))
def test_search_finds_the_product(product: str, query: str, index: SemanticIndex):
    hits = index.search(query, k=3, kinds=["product"])
    assert f"product:dragracer/{product}" in [h.entry.id for h in hits], [
        (h.entry.id, h.reasons) for h in hits
    ]
