import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from dagster_project.ask.api import create_app
from dagster_project.semantics import load_semantic_layer
from tests.small_mesh import write_small_mesh

CLEAR_EMAILS = {f"person{i}@secret.example" for i in range(5)}


@pytest.fixture
def client(lake, demo_contracts):
    write_small_mesh(lake, demo_contracts)
    return TestClient(create_app(lake, load_semantic_layer()))


def test_page_and_products(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="ask-box"' in page.text
    assert "http://" not in page.text.replace("http://127.0.0.1", "")  # no external CDN
    keys = [p["key"] for p in client.get("/api/products").json()]
    assert "sales/order_lines" in keys and "customers/customer_profiles" in keys


def test_product_page_masks_sample_rows_for_analysts(client):
    page = client.get("/api/products/customers/customer_profiles").json()
    email = next(c for c in page["schema"] if c["name"] == "email")
    assert email["mask"] == "partial" and email["classification"]
    assert page["quality"]["rows"] == 5
    columns, rows = page["sample"]["columns"], page["sample"]["rows"]
    assert "birth_date" not in columns  # dropped for analysts
    assert not {r[columns.index("email")] for r in rows} & CLEAR_EMAILS
    steward = client.get("/api/products/customers/customer_profiles?role=steward").json()
    cols = steward["sample"]["columns"]
    assert {r[cols.index("email")] for r in steward["sample"]["rows"]} == CLEAR_EMAILS
    assert client.get("/api/products/sales/nope").status_code == 404
    denied = client.get("/api/products/sales/order_lines?role=customer_care").json()
    assert denied["sample"] is None and "no grant" in denied["access"]


def test_ask_with_a_conversation_and_guarded_sql(client):
    first = client.post("/api/ask", json={"question": "revenue by region"}).json()
    assert first["columns"] == ["region", "revenue"] and first["sql"]
    follow = client.post(
        "/api/ask", json={"question": "and by month?", "conversation_id": first["conversation_id"]}
    ).json()
    assert follow["conversation_id"] == first["conversation_id"]
    assert follow["columns"] == ["month", "region", "revenue"]
    bad = client.post("/api/ask", json={"sql": "SELECT * FROM information_schema.tables"})
    assert bad.status_code == 400
    sql = client.post("/api/ask", json={"sql": "SELECT email FROM customers.customer_profiles"})
    assert sql.status_code == 200 and not {r[0] for r in sql.json()["rows"]} & CLEAR_EMAILS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mesh_serve_answers_over_http(lake, demo_contracts, tmp_path):
    write_small_mesh(lake, demo_contracts)
    port = _free_port()
    mesh = Path(sys.executable).parent / "mesh"
    process = subprocess.Popen(
        [str(mesh), "serve", "--port", str(port)],
        env={**os.environ, "MESH_HOME": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        answer = httpx.post(base + "/api/ask", json={"question": "total revenue"}, timeout=30)
        assert answer.json()["rows"] == [[pytest.approx(193.2)]]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_insights_compare_the_last_four_weeks_with_the_four_before(client):
    insights = client.get("/api/insights").json()
    revenue = next(h for h in insights["headline"] if h["metric"] == "revenue")
    # small mesh: 2025-03-01 and 03-02 (122.6) before, 2025-04-01 (70.6) in the last 28 days
    assert revenue["before"] == pytest.approx(122.6) and revenue["after"] == pytest.approx(70.6)
    assert revenue["change"] == pytest.approx(70.6 / 122.6 - 1)
    assert "Revenue: 70.60 after 122.60" in insights["markdown"]
    assert {m["dimension"] for m in insights["movers"]} == {"region", "category"}
    assert len(insights["low_stock"]) == 5 and "Stock-out risks" in insights["markdown"]
