"""The HTTP API's front door: bodies, questions, SQL and search text are capped (413),
and with anonymous access off every route but the static page needs a key."""

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from dagster_project.access.api_keys import ApiKeyStore
from dagster_project.ask.api import create_app
from dagster_project.metadata.semantics import load_semantic_layer
from tests.small_mesh import write_small_mesh

# The static page (no data, where a caller types the key) and its charting library.
PUBLIC = {"/", "/static/plotly.min.js"}
SAMPLE_PATHS = {
    "/api/search": "/api/search?q=revenue",
    "/api/products/{domain}/{name}": "/api/products/sales/stores",
}


@pytest.fixture
def app(lake, demo_contracts, monkeypatch):
    monkeypatch.setenv("MESH_MAX_BODY_BYTES", "4096")
    write_small_mesh(lake, demo_contracts)
    return create_app(lake, load_semantic_layer())


def _routes(app) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                found.append((method, route.path))
    return found


def test_with_anonymous_access_off_every_route_needs_a_key(app, lake, monkeypatch):
    monkeypatch.setenv("MESH_API_ANONYMOUS_ROLE", "none")
    client = TestClient(app)
    routes = _routes(app)
    assert {path for _, path in routes} >= {
        "/api/search",
        "/api/products",
        "/api/ask",
        "/api/insights",
        "/openapi.json",
        "/docs",
    }
    _, key = ApiKeyStore(lake.settings).create("ann", "analyst")
    for method, path in routes:
        url = SAMPLE_PATHS.get(path, path)
        body = {"json": {"question": "total revenue"}} if method == "POST" else {}
        anonymous = client.request(method, url, **body)
        if path in PUBLIC:
            assert anonymous.status_code == 200
            continue
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.headers["www-authenticate"] == "Bearer"
        forged = client.request(method, url, headers={"Authorization": "Bearer mwk_x"}, **body)
        assert forged.status_code == 401, (method, path)
        keyed = client.request(method, url, headers={"Authorization": f"Bearer {key}"}, **body)
        assert keyed.status_code == 200, (method, path, keyed.text)


def test_every_api_route_is_checked_by_this_suite(app):
    """A new route must be added to the suite above (it reads app.routes, so this only
    pins that each route takes the caller: a route without it would answer anyone)."""
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path not in PUBLIC:
            names = {d.call.__name__ for d in route.dependant.dependencies}
            assert "_caller" in names, route.path


def test_bodies_over_the_cap_get_413_declared_or_streamed(app):
    client = TestClient(app)
    big = {"question": "x" * 5000}
    assert client.post("/api/ask", json=big).status_code == 413

    def chunks():
        for _ in range(10):
            yield b'{"question": "' + b"x" * 1000

    streamed = client.post(
        "/api/ask", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413 and "MESH_MAX_BODY_BYTES" in streamed.json()["detail"]
    assert client.post("/api/ask", json={"question": "total revenue"}).status_code == 200


def test_questions_sql_and_search_text_over_their_caps_get_413(app, monkeypatch):
    client = TestClient(app)
    too_long = client.post("/api/ask", json={"question": "revenue " * 300})
    assert too_long.status_code == 413 and "MESH_MAX_QUESTION_CHARS" in too_long.json()["detail"]
    monkeypatch.setenv("MESH_MAX_SQL_CHARS", "100")
    client = TestClient(create_app(app.state.mesh.lake, app.state.mesh.layer))
    sql = "SELECT count(*) FROM sales.stores WHERE " + " AND ".join(["store_id > 0"] * 10)
    refused = client.post("/api/ask", json={"sql": sql})
    assert refused.status_code == 413 and "MESH_MAX_SQL_CHARS" in refused.json()["detail"]
    assert client.get("/api/search", params={"q": "revenue " * 100}).status_code == 413
