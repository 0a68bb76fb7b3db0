from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from dagster_project.access.api_keys import ApiKeyStore
from dagster_project.ask.api import create_app
from dagster_project.checks.quality.score import QualityScore, save_score
from dagster_project.metadata.semantics import load_semantic_layer
from tests.servers import mesh_serve
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
    assert client.get("/api/products/sales/nope").status_code == 404


def test_product_page_shows_data_freshness_not_only_last_write(client, lake, demo_contracts):
    quality = client.get("/api/products/sales/order_lines").json()["quality"]
    column = demo_contracts["sales/order_lines"].event_time
    newest = lake.read("sales/order_lines")[column].max()
    assert quality["newest_event"] == str(newest)
    assert quality["freshness"] in {"fresh", "stale"} and str(newest) in quality["freshness_detail"]


def test_a_role_with_clear_pii_needs_its_api_key(client, lake):
    profiles = "/api/products/customers/customer_profiles"
    # Naming a stronger role is not enough: the caller is anonymous, hence an analyst.
    assert client.get(f"{profiles}?role=steward").status_code == 403
    asked = client.post("/api/ask", json={"sql": "SELECT 1 AS one", "role": "steward"})
    assert asked.status_code == 403

    _, key = ApiKeyStore(lake.settings).create("kim", "steward")
    steward = client.get(profiles, headers=bearer(key)).json()
    cols = steward["sample"]["columns"]
    assert {r[cols.index("email")] for r in steward["sample"]["rows"]} == CLEAR_EMAILS
    audit = lake.read("governance/access_audit")
    assert "api:kim" in audit["principal"].to_list()

    _, care = ApiKeyStore(lake.settings).create("sam", "customer_care")
    denied = client.get("/api/products/sales/order_lines", headers=bearer(care)).json()
    assert denied["sample"] is None and "no grant" in denied["access"]

    assert client.get(profiles, headers=bearer(key + "x")).status_code == 401
    ApiKeyStore(lake.settings).revoke("kim")
    revoked = client.get(profiles, headers=bearer(key))
    assert revoked.status_code == 401 and revoked.headers["www-authenticate"] == "Bearer"


def test_anonymous_access_can_be_switched_off(client, lake, monkeypatch):
    monkeypatch.setenv("MESH_API_ANONYMOUS_ROLE", "none")
    assert client.post("/api/ask", json={"question": "revenue by region"}).status_code == 401
    _, key = ApiKeyStore(lake.settings).create("ann", "analyst")
    answer = client.post("/api/ask", json={"question": "revenue by region"}, headers=bearer(key))
    assert answer.status_code == 200 and answer.json()["columns"] == ["region", "revenue"]


def test_expired_keys_stop_working(lake):
    store = ApiKeyStore(lake.settings)
    created, key = store.create("tmp", "analyst", days=1)
    assert store.authenticate(key) == created
    assert created.expired(datetime.fromisoformat(created.expires_at))
    assert not created.expired(datetime.fromisoformat(created.created_at))
    assert oct(Path(lake.settings.files.path(store.uri)).stat().st_mode)[-3:] == "600"
    assert key not in Path(lake.settings.files.path(store.uri)).read_text()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_ask_with_a_conversation_and_guarded_sql(client):
    first = client.post("/api/ask", json={"question": "revenue by region"}).json()
    assert first["columns"] == ["region", "revenue"] and first["sql"]
    assert first["chart"] == {"type": "bar", "x": "region", "y": ["revenue"], "series": None}
    follow = client.post(
        "/api/ask", json={"question": "and by month?", "conversation_id": first["conversation_id"]}
    ).json()
    assert follow["conversation_id"] == first["conversation_id"]
    assert follow["columns"] == ["month", "region", "revenue"]
    assert follow["chart"]["type"] == "line" and follow["chart"]["series"] == "region"
    bad = client.post("/api/ask", json={"sql": "SELECT * FROM information_schema.tables"})
    assert bad.status_code == 400
    sql = client.post("/api/ask", json={"sql": "SELECT email FROM customers.customer_profiles"})
    assert sql.status_code == 200 and not {r[0] for r in sql.json()["rows"]} & CLEAR_EMAILS


def test_mesh_serve_answers_over_http(lake, demo_contracts, tmp_path):
    write_small_mesh(lake, demo_contracts)
    with mesh_serve(tmp_path) as base:
        answer = httpx.post(base + "/api/ask", json={"question": "total revenue"}, timeout=30)
        assert answer.json()["rows"] == [[pytest.approx(193.2)]]


def test_insights_compare_the_last_four_weeks_with_the_four_before(client):
    insights = client.get("/api/insights").json()
    revenue = next(h for h in insights["headline"] if h["metric"] == "revenue")
    # small mesh: 2025-03-01 and 03-02 (122.6) before, 2025-04-01 (70.6) in the last 28 days
    assert revenue["before"] == pytest.approx(122.6) and revenue["after"] == pytest.approx(70.6)
    assert revenue["change"] == pytest.approx(70.6 / 122.6 - 1)
    assert "Revenue: 70.60 after 122.60" in insights["markdown"]
    assert {m["dimension"] for m in insights["movers"]} == {"region", "category"}
    assert len(insights["lowest"]) == 5 and "Stock-out risks" in insights["markdown"]


def test_insights_include_the_domains_insights_products(client, lake, demo_contracts):
    from datetime import date

    import polars as pl

    from dagster_project.ask.narratives import write_insights_report

    risk = "sales/order_lines: unit_price drifted (score 0.42) in 2025-04-01 .. 2025-04-01."
    row = {
        "kind": "risk",
        "subject": "sales/order_lines",
        "metric": "drift:unit_price",
        "period_start": date(2025, 3, 5),
        "period_end": date(2025, 4, 1),
        "value": 0.42,
        "previous_value": None,
        "change_pct": None,
        "narrative": risk,
    }
    contract = demo_contracts["sales/insights"]
    lake.write(contract, pl.DataFrame([row]).select(contract.column_names))
    write_insights_report(
        "sales", f"# Sales\n\n## Data quality warnings\n\n- {risk}\n", lake.settings
    )
    domains = client.get("/api/insights").json()["domains"]
    assert [d["product"] for d in domains] == ["sales/insights"]  # others are not built
    assert domains[0]["rows"][0]["narrative"] == risk and risk in domains[0]["markdown"]


def test_plotly_is_served_by_the_mesh_itself(client):
    served = client.get("/static/plotly.min.js")
    assert served.status_code == 200 and "javascript" in served.headers["content-type"]
    assert "newPlot" in served.text
    assert '<script src="/static/plotly.min.js"></script>' in client.get("/").text


def test_product_page_trends_rows_per_partition_and_quality_history(client, lake, demo_contracts):
    contract = demo_contracts["sales/order_lines"]
    score = QualityScore(contract.key, {"freshness": 1.0, "drift": 0.5}, {}, "2025-03-10T00:00")
    save_score(lake.settings, contract, score)
    trends = client.get("/api/products/sales/order_lines").json()["trends"]
    assert trends["partition"] == "order_date"
    total = lake.info("sales/order_lines").rows
    assert sum(n for _, n in trends["rows"]) == total and len(trends["rows"]) >= 2
    assert [d for d, _ in trends["rows"]] == sorted(d for d, _ in trends["rows"])
    assert trends["history"] == [
        {"evaluated_at": "2025-03-10T00:00", "score": score.score, "freshness": 1.0, "drift": 0.5}
    ]


def test_a_query_is_audited_behind_its_answer_and_the_row_arrives(client, lake):
    answered = client.post("/api/ask", json={"sql": "SELECT count(*) AS n FROM sales.stores"})
    assert answered.status_code == 200 and answered.json()["rows"] == [[4]]
    client.app.state.mesh.audit_writer.flush()
    audit = lake.read("governance/access_audit")
    mine = audit.filter(audit["principal"] == "api:anonymous@testclient")
    assert mine["product"].to_list() == ["sales/stores"] and mine["channel"][0] == "ask"


EXITING_WRITER = """
from dagster_project.access.policy import AuditRecord, AuditWriter, Decision, GovernedReader
writer = AuditWriter(GovernedReader())
writer.put([AuditRecord("test:exit", "analyst", "ask", "sales/stores", Decision(True, "ok"), 1)])
"""  # the process ends at once: the queued row is written on the way out


def test_audit_rows_queued_when_the_process_ends_are_written(lake, demo_contracts):
    import os
    import subprocess
    import sys

    env = {**os.environ, "MESH_HOME": str(lake.settings.home)}
    subprocess.run([sys.executable, "-c", EXITING_WRITER], env=env, check=True, timeout=120)
    audit = lake.read("governance/access_audit")
    assert audit.filter(audit["principal"] == "test:exit").height == 1
