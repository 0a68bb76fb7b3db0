import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dagster_project.access.policy import AccessPolicy
from dagster_project.app.cli import app as mesh_app
from dagster_project.assembly.locations import product_assets
from dagster_project.lake.resource import MeshResource
from dagster_project.products.product import Product
from governance.audit import refresh_audit
from governance.sharing.config import RecipientStore, SharingConfig, hash_token
from governance.sharing.products import shared_products
from governance.sharing.server import SharingServer, create_app, keep_file
from tests.small_mesh import write_small_mesh

SHARE = "retail_partners"


@pytest.fixture
def shared(lake, demo_contracts):
    """The small mesh with every shared copy built by the governance assets."""
    write_small_mesh(lake, demo_contracts)
    domain = [c for k, c in demo_contracts.items() if not k.startswith("governance/")]
    assets = product_assets(shared_products(domain))
    result = dg.materialize(assets, resources={"mesh": MeshResource(home=lake.settings.home)})
    assert result.success
    return lake, result


def test_shared_copies_are_masked_checked_and_audited(shared):
    lake, result = shared
    keys = sorted(
        k.to_user_string() for e in result.get_asset_materialization_events() for k in [e.asset_key]
    )
    assert keys == [
        "customers/customer_profiles_shared_partner",
        "inventory/products_shared_partner",
        "sales/daily_sales_shared_partner",
        "sales/order_lines_shared_partner",
        "sales/stores_shared_partner",
    ]
    evaluations = result.get_asset_check_evaluations()
    assert all(e.passed for e in evaluations if e.check_name != "event_freshness")
    # the small mesh's days are in 2025: copies with an event time are stale by their data
    stale = {
        e.asset_key.to_user_string()
        for e in evaluations
        if e.check_name == "event_freshness" and not e.passed
    }
    assert stale == {"sales/order_lines_shared_partner", "sales/daily_sales_shared_partner"}
    copy = lake.read("customers/customer_profiles_shared_partner")
    assert "full_name" not in copy.columns and "birth_date" not in copy.columns
    assert not set(copy["email"]) & set(lake.read("customers/customer_profiles")["email"])
    assert lake.partition_columns("sales/order_lines_shared_partner") == ["order_date"]
    audit = lake.read("governance/access_audit")
    assert set(audit["principal"]) == {"governance:shared-copy:partner"}
    assert audit.height == 5 and set(audit["decision"]) == {"allow"}


def test_the_audit_asset_compacts_and_reports(shared, demo_contracts):
    lake, _ = shared
    contract = demo_contracts["governance/access_audit"]
    audit = Product("access_audit", build=refresh_audit, contract=contract)
    result = dg.materialize(
        product_assets([audit]), resources={"mesh": MeshResource(home=lake.settings.home)}
    )
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["audit_reads"].value == 5 and metadata["dagster/row_count"].value == 5
    assert metadata["files_compacted"].value >= 2
    assert lake.read("governance/access_audit").height == 5


def test_recipient_tokens_are_stored_hashed_and_expire(mesh_home):
    store = RecipientStore(mesh_home)
    _, token = store.create("acme", [SHARE])
    text = Path(mesh_home.files.path(store.uri)).read_text()
    assert token not in text and hash_token(token) in text
    assert store.authenticate(token).name == "acme"
    assert store.authenticate(token + "x") is None
    _, new = store.rotate("acme")
    assert store.authenticate(token) is None and store.authenticate(new).name == "acme"
    _, old = store.create("gone", [SHARE], days=-1)
    assert store.authenticate(old) is None
    assert stat.S_IMODE(Path(mesh_home.files.path(store.uri)).stat().st_mode) == 0o600


def test_json_predicate_hints_filter_partitions_best_effort():
    day = {"order_date": "2025-03-01"}
    eq = {
        "op": "equal",
        "children": [
            {"op": "column", "name": "order_date", "valueType": "date"},
            {"op": "literal", "value": "2025-03-02", "valueType": "date"},
        ],
    }
    assert not keep_file(json.dumps(eq), day)
    assert keep_file(json.dumps({"op": "not", "children": [eq]}), day)
    assert keep_file("{not json", day) and keep_file(None, day)
    other = {
        "op": "equal",
        "children": [
            {"op": "column", "name": "store_id", "valueType": "int"},
            {"op": "literal", "value": "1", "valueType": "int"},
        ],
    }
    assert keep_file(json.dumps(other), day)  # not a partition column: keep


def _client(lake, policy=None) -> tuple[TestClient, dict[str, str]]:
    _, token = RecipientStore(lake.settings).create("acme", [SHARE])
    server = SharingServer(lake.settings, policy=policy)
    return TestClient(create_app(server)), {"Authorization": f"Bearer {token}"}


def test_server_authentication_and_protocol_basics(shared):
    lake, _ = shared
    client, auth = _client(lake)
    base = "/delta-sharing"
    assert client.get(f"{base}/shares").status_code == 401
    wrong = client.get(f"{base}/shares", headers={"Authorization": "Bearer mesh_nope"})
    assert wrong.status_code == 401 and wrong.json()["errorCode"] == "UNAUTHENTICATED"
    page = client.get(f"{base}/shares/{SHARE}/all-tables?maxResults=2", headers=auth).json()
    assert len(page["items"]) == 2 and page["nextPageToken"]
    rest = client.get(
        f"{base}/shares/{SHARE}/all-tables?pageToken={page['nextPageToken']}", headers=auth
    ).json()
    assert len(rest["items"]) == 3 and "nextPageToken" not in rest
    table = f"{base}/shares/{SHARE}/schemas/sales/tables/order_lines"
    head = client.head(f"{table}/version", headers=auth)
    assert head.status_code == 200 and head.headers["delta-table-version"] == "0"
    later = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert client.get(f"{table}/version?startingTimestamp={later}", headers=auth).status_code == 400
    hints = json.dumps(
        {
            "op": "equal",
            "children": [
                {"op": "column", "name": "order_date", "valueType": "date"},
                {"op": "literal", "value": "2025-03-02", "valueType": "date"},
            ],
        }
    )
    body = {"jsonPredicateHints": hints, "predicateHints": ["store_id = 1"]}
    lines = client.post(f"{table}/query", headers=auth, json=body).text.splitlines()
    files = [json.loads(line)["file"] for line in lines[2:]]
    assert [f["partitionValues"]["order_date"] for f in files] == ["2025-03-02"]
    delta = client.post(
        f"{table}/query",
        headers={**auth, "delta-sharing-capabilities": "responseformat=delta"},
        json={},
    )
    assert delta.headers["delta-sharing-capabilities"] == "responseformat=delta"
    first = [json.loads(line) for line in delta.text.splitlines()]
    assert "deltaProtocol" in first[0]["protocol"] and "deltaMetadata" in first[1]["metaData"]
    assert first[2]["file"]["deltaSingleAction"]["add"]["path"].startswith("http")


def test_a_revoked_grant_or_a_stale_copy_is_refused_and_audited(shared):
    lake, _ = shared
    policy = AccessPolicy.load()
    document = {
        "default_mask": policy.default_mask,
        "masks": policy.masks,
        "audit": {"product": policy.audit_product, "contract": str(policy.audit_contract_path)},
        "roles": {"partner": {"grants": [{"products": ["sales/*"]}]}},
    }
    client, auth = _client(lake, AccessPolicy.from_document(document))
    url = f"/delta-sharing/shares/{SHARE}/schemas/customers/tables/customer_profiles/query"
    refused = client.post(url, headers=auth, json={})
    assert refused.status_code == 403 and "no grant" in refused.json()["message"]
    document["roles"]["partner"] = {"grants": [{"products": ["*/*"]}]}  # masks changed
    client, auth = _client(lake, AccessPolicy.from_document(document))
    stale = client.post(url, headers=auth, json={})
    assert stale.status_code == 403 and "rebuild" in stale.json()["message"]
    denied = lake.read("governance/access_audit").filter(pl.col("decision") == "deny")
    assert set(denied["principal"]) == {"recipient:acme"} and denied.height == 2


def test_mesh_share_commands_write_profiles_and_never_print_tokens(mesh_home, tmp_path):
    runner = CliRunner()
    out = tmp_path / "acme.share"
    created = runner.invoke(
        mesh_app, ["share", "create", "acme", "--share", SHARE, "--days", "30", "--out", str(out)]
    )
    assert created.exit_code == 0, created.output
    profile = json.loads(out.read_text())
    assert profile["shareCredentialsVersion"] == 1
    assert profile["endpoint"] == "http://127.0.0.1:8090/delta-sharing"
    assert profile["expirationTime"].endswith("Z")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    token = profile["bearerToken"]
    listed = runner.invoke(mesh_app, ["share", "list"])
    assert listed.exit_code == 0 and "acme" in listed.output and token not in listed.output
    assert token not in created.output
    rotated = runner.invoke(mesh_app, ["share", "profile", "acme", "--out", str(out)])
    assert rotated.exit_code == 0
    assert json.loads(out.read_text())["bearerToken"] != token
    unknown = runner.invoke(
        mesh_app, ["share", "create", "x", "--share", "nope", "--out", str(out)]
    )
    assert unknown.exit_code != 0


def test_shares_config_names_existing_products(demo_contracts):
    config = SharingConfig.load()
    assert {p for p, _ in config.materialized()} <= set(demo_contracts)
    table = config.table("RETAIL_PARTNERS", "Sales", "ORDER_LINES")  # case-insensitive
    assert table.shared_key == "sales/order_lines_shared_partner"


def test_a_share_of_a_product_no_location_defines_is_left_out_with_a_warning(
    demo_contracts, caplog
):
    """A workspace without a shared product's domain still loads governance."""
    without_sales = [
        c for k, c in demo_contracts.items() if k.split("/")[0] not in ("sales", "governance")
    ]
    products = shared_products(without_sales)
    names = sorted(p.contract.key for p in products)
    assert names and not any(n.startswith("sales/") for n in names)
    assert "sales/daily_sales" in caplog.text and "left out" in caplog.text
