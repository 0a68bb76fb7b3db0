"""Attacks on the Delta Sharing server (issue 17, findings 4-9): every decision audited
under a verified name, forged names never audited as themselves, malformed headers and
bodies 4xx, time travel never serving what today's policy withholds, and no token or
signed URL in any log line."""

import base64
import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import polars as pl
import pytest
from fastapi.testclient import TestClient

from dagster_project.access.policy import AccessPolicy, GovernedReader
from dagster_project.lake.storage import Lake
from governance.sharing.config import RecipientStore, SharingConfig, write_profile
from governance.sharing.products import read_for_sharing, shared_contract, write_shared_copy
from governance.sharing.server import (
    UNVERIFIED,
    AuditBudget,
    QueryStringFilter,
    SharingServer,
    create_app,
)
from tests.servers import free_port
from tests.small_mesh import write_small_mesh

SHARE = "retail_partners"
BASE = "/delta-sharing"
PROFILES = f"{BASE}/shares/{SHARE}/schemas/customers/tables/customer_profiles"
STORES = f"{BASE}/shares/{SHARE}/schemas/sales/tables/stores"


def policy_with(partner_masks: dict[str, str] | None = None) -> AccessPolicy:
    """The repository's policy, the partner role's masks replaced."""
    policy = AccessPolicy.load()
    roles = {}
    for name, role in policy.roles.items():
        grants = [{"products": list(g.products), "clear": list(g.clear)} for g in role.grants]
        masks = partner_masks if name == "partner" and partner_masks is not None else role.masks
        roles[name] = {"grants": grants, "masks": masks}
    document = {
        "default_mask": policy.default_mask,
        "masks": policy.masks,
        "audit": {"product": policy.audit_product, "contract": str(policy.audit_contract_path)},
        "roles": roles,
    }
    return AccessPolicy.from_document(document)


def build_copies(lake: Lake, contracts: dict, policy: AccessPolicy) -> None:
    """What the governance assets do: each shared copy as the policy shows it."""
    reader = GovernedReader(lake, policy)
    for product, role in SharingConfig.load().materialized():
        source = contracts[product]
        decision = policy.decide(role, source)
        frame = read_for_sharing(reader, source, role)
        write_shared_copy(lake, shared_contract(source, decision, role), frame, decision)


@pytest.fixture
def mesh(lake, demo_contracts):
    write_small_mesh(lake, demo_contracts)
    build_copies(lake, demo_contracts, AccessPolicy.load())
    return lake


def serve(lake: Lake, policy: AccessPolicy | None = None, **options) -> TestClient:
    return TestClient(create_app(SharingServer(lake.settings, policy=policy, **options)))


def token_for(lake: Lake, name: str = "acme", shares: list[str] | None = None) -> dict:
    _, token = RecipientStore(lake.settings).create(name, [SHARE] if shares is None else shares)
    return {"Authorization": f"Bearer {token}"}


def audit(lake: Lake) -> pl.DataFrame:
    return lake.read("governance/access_audit").filter(pl.col("channel") == "sharing")


def file_urls(client: TestClient, auth: dict, table: str = STORES, body=None) -> list[str]:
    response = client.post(f"{table}/query", headers=auth, json=body or {})
    assert response.status_code == 200, response.text
    return [json.loads(line)["file"]["url"] for line in response.text.splitlines()[2:]]


# -- finding 4: denials on shares and tables ---------------------------------------------------
def test_a_share_or_table_refused_is_audited_under_the_recipient(mesh):
    client = serve(mesh)
    auth = token_for(mesh, "outsider", shares=[])
    assert client.get(f"{BASE}/shares/{SHARE}/schemas", headers=auth).status_code == 403
    assert client.post(f"{PROFILES}/query", headers=auth, json={}).status_code == 403
    assert client.get(f"{BASE}/shares/nope/all-tables", headers=auth).status_code == 404
    member = token_for(mesh, "acme")
    missing = f"{BASE}/shares/{SHARE}/schemas/sales/tables/secret_table/metadata"
    assert client.get(missing, headers=member).status_code == 404
    rows = audit(mesh).filter(pl.col("decision") == "deny")
    outsider = rows.filter(pl.col("principal") == "recipient:outsider")
    assert outsider.height == 3
    assert set(outsider["product"]) == {f"share:{SHARE}", "share:nope"}
    acme = rows.filter(pl.col("principal") == "recipient:acme")
    assert acme["product"].to_list() == [f"{SHARE}.sales.secret_table"]


def test_listings_and_table_reads_are_audited_as_allowed(mesh):
    client = serve(mesh)
    auth = token_for(mesh)
    client.get(f"{BASE}/shares", headers=auth)
    client.get(f"{BASE}/shares/{SHARE}/all-tables", headers=auth)
    client.head(f"{STORES}/version", headers=auth)
    client.get(f"{STORES}/metadata", headers=auth)
    file_urls(client, auth)
    allowed = audit(mesh).filter(pl.col("principal") == "recipient:acme")
    assert set(allowed["decision"]) == {"allow"} and allowed.height == 5
    reasons = " | ".join(allowed["reason"])
    for what in ("listed 1 share", "listed all its tables", "table version", "metadata", "query"):
        assert what in reasons


# -- finding 5: downloads ----------------------------------------------------------------------
def test_every_file_download_is_audited(mesh):
    client = serve(mesh)
    auth = token_for(mesh)
    url = file_urls(client, auth)[0]
    assert client.get(url).status_code == 200
    assert client.get(url, headers={"Range": "bytes=0-3"}).content == b"PAR1"
    assert client.head(url).status_code == 200
    downloads = audit(mesh).filter(pl.col("reason").str.contains("; (GET|HEAD) file "))
    assert downloads.height == 3 and set(downloads["principal"]) == {"recipient:acme"}
    assert set(downloads["product"]) == {"sales/stores"}
    assert any("bytes 0-3" in r for r in downloads["reason"])


# -- finding 6: nobody writes audit rows under a name they chose ------------------------------
def _forged(url: str, name: str) -> str:
    claimed = base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")
    query = parse_qs(urlparse(url).query)
    return url.replace(f"r={query['r'][0]}", f"r={claimed}")


def test_forged_names_and_tokens_are_audited_under_the_fixed_name(mesh):
    client = serve(mesh)
    auth = token_for(mesh)
    url = file_urls(client, auth)[0]
    assert client.get(_forged(url, "ceo")).status_code == 403
    unsigned = url.split("?")[0] + "?r=" + base64.urlsafe_b64encode(b"auditor").decode()
    assert client.get(unsigned).status_code == 403
    secret = "mesh_" + "s" * 43
    assert client.get(f"{BASE}/shares", headers={"Authorization": f"Bearer {secret}"}).status_code
    assert client.get(f"{BASE}/shares").status_code == 401
    rows = audit(mesh)
    assert not set(rows["principal"]) & {"recipient:ceo", "recipient:auditor"}
    forged = rows.filter(pl.col("principal") == UNVERIFIED)
    assert forged.height == 4 and set(forged["decision"]) == {"deny"}
    reasons = forged["reason"].to_list()
    assert any("signature mismatch; claims 'ceo'" in r for r in reasons)
    assert any("claims 'auditor'" in r for r in reasons)
    assert any("unknown or expired bearer token (sha256 " in r for r in reasons)
    assert not any(secret in r for r in reasons)
    assert "sales/stores" in forged["product"].to_list()  # the table the URL names


def test_unverified_audits_are_rate_limited(mesh, monkeypatch):
    monkeypatch.setenv("MESH_UNVERIFIED_AUDITS_PER_MINUTE", "3")
    client = serve(mesh)
    for attempt in range(10):
        bad = {"Authorization": f"Bearer mesh_bad{attempt}"}
        assert client.get(f"{BASE}/shares", headers=bad).status_code == 401
    assert audit(mesh).filter(pl.col("principal") == UNVERIFIED).height == 3

    now = [0.0]
    budget = AuditBudget(2, clock=lambda: now[0])
    assert [budget.take() for _ in range(4)] == [0, 0, None, None]
    now[0] = 61
    assert budget.take() == 2  # the next row says how many were left out


# -- finding 7: malformed headers and bodies -----------------------------------------------
@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("bytes=abc", 400),
        ("bytes=-", 400),
        ("bytes=5", 400),
        ("bytes=--1", 400),
        ("bytes=1-2-3", 400),
        ("bytes=\u0661-\u0662", 400),  # Arabic-Indic digits: int() would take them
        ("bytes=" + "9" * 5000 + "-", 400),
        ("bytes=-0", 416),
        ("bytes=5-1", 416),
        ("bytes=99999999-", 416),
        ("bytes=0-3,abc", 206),  # the first range is served
        ("items=0-3", 200),  # another unit: ignored
    ],
)
def test_malformed_range_headers_answer_4xx_not_500(mesh, header, status):
    client = serve(mesh)
    url = file_urls(client, token_for(mesh))[0]
    response = client.get(url, headers={"Range": header.encode()})
    assert response.status_code == status, response.text
    if status == 416:
        assert response.headers["content-range"].startswith("bytes */")
    if status >= 400:
        denied = audit(mesh).filter(pl.col("decision") == "deny")
        assert denied["principal"].to_list() == ["recipient:acme"]


def test_malformed_query_bodies_answer_400_and_big_ones_413(mesh, monkeypatch):
    monkeypatch.setenv("MESH_MAX_BODY_BYTES", "2048")
    client = serve(mesh)
    auth = {**token_for(mesh), "Content-Type": "application/json"}
    for body in ("[1, 2]", "{not json", "[" * 1020 + "]" * 1020, '{"version": "0"}'):
        response = client.post(f"{STORES}/query", headers=auth, content=body)
        assert response.status_code == 400, (body[:20], response.text)
    assert client.post(f"{STORES}/query", headers=auth, json={"version": True}).status_code == 400
    big = client.post(f"{STORES}/query", headers=auth, content='{"x": "' + "y" * 3000 + '"}')
    assert big.status_code == 413 and big.json()["errorCode"] == "REQUEST_TOO_LARGE"


# -- finding 8: time travel under today's policy -----------------------------------------------
def test_versions_built_before_a_mask_was_tightened_are_withheld(mesh, demo_contracts):
    auth = token_for(mesh)
    before = serve(mesh)
    old_url = file_urls(before, auth, PROFILES)[0]  # a live URL of version 0
    # Governance tightens the partner's phone mask to `drop` and rebuilds the copies.
    tightened = policy_with({"email": "hash", "full_name": "drop", "phone": "drop"})
    build_copies(mesh, demo_contracts, tightened)
    client = serve(mesh, tightened)
    current = client.post(f"{PROFILES}/query", headers=auth, json={})
    assert current.status_code == 200
    schema = json.loads(current.text.splitlines()[1])["metaData"]["schemaString"]
    assert "phone" not in schema
    for travel in ({"version": 0}, {"timestamp": _commit_time(mesh, 0)}):
        refused = client.post(f"{PROFILES}/query", headers=auth, json=travel)
        assert refused.status_code == 403, travel
        assert "column phone is no longer shared" in refused.json()["message"]
    assert client.get(old_url).status_code == 403  # the URL handed out before the change
    # Unchanged tables keep every version.
    assert client.post(f"{STORES}/query", headers=auth, json={"version": 0}).status_code == 200
    withheld = audit(mesh).filter(pl.col("reason").str.contains("withheld"))
    assert withheld.height == 3 and set(withheld["principal"]) == {"recipient:acme"}


def test_a_mask_changed_in_kind_withholds_old_versions_too(mesh, demo_contracts):
    auth = token_for(mesh)
    hashed = policy_with({"email": "hash", "full_name": "drop", "phone": "hash"})
    build_copies(mesh, demo_contracts, hashed)  # same columns, phone hashed not partial
    client = serve(mesh, hashed)
    refused = client.post(f"{PROFILES}/query", headers=auth, json={"version": 0})
    assert refused.status_code == 403 and "now shared as hash, not partial" in refused.text


def test_versions_that_show_less_than_today_stay_readable(mesh, demo_contracts):
    auth = token_for(mesh)
    looser = policy_with({"email": "hash", "full_name": "hash"})  # full_name now shared hashed
    stale = serve(mesh, looser)
    assert stale.post(f"{PROFILES}/query", headers=auth, json={}).status_code == 403  # rebuild
    build_copies(mesh, demo_contracts, looser)
    client = serve(mesh, looser)
    assert client.post(f"{PROFILES}/query", headers=auth, json={"version": 0}).status_code == 200


def test_copies_written_without_a_record_of_their_masks_are_refused(lake, demo_contracts):
    write_small_mesh(lake, demo_contracts)
    policy = AccessPolicy.load()
    source = demo_contracts["sales/stores"]
    decision = policy.decide("partner", source)
    frame = read_for_sharing(GovernedReader(lake, policy), source, "partner")
    lake.write(shared_contract(source, decision, "partner"), frame)  # no record
    refused = serve(lake).post(f"{STORES}/query", headers=token_for(lake), json={})
    assert refused.status_code == 403 and "without a record of its masks" in refused.text


def _commit_time(lake: Lake, version: int) -> str:
    table = lake.table("customers/customer_profiles_shared_partner")
    commit = next(c for c in table.history() if c["version"] == version)
    moment = datetime.fromtimestamp(commit["timestamp"] / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


# -- finding 9: no token or signed URL in any log line ---------------------------------------
def test_the_access_log_filter_strips_signatures():
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/delta-sharing/files/a/b/c/x.parquet?r=YQ&sig=abc123", "1.1", 200),
        None,
    )  # fmt: skip
    assert QueryStringFilter().filter(record)
    assert "sig=" not in record.getMessage() and "x.parquet" in record.getMessage()


def test_mesh_share_serve_logs_no_token_or_signed_url(mesh, tmp_path):
    _, token = RecipientStore(mesh.settings).create("acme", [SHARE])
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "mesh"), "share", "serve", "--port", str(port)],
            env={**os.environ, "MESH_HOME": mesh.settings.home},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}{BASE}"
            auth = {"Authorization": f"Bearer {token}"}
            for _ in range(300):
                try:
                    httpx.get(f"{base}/shares", headers=auth, timeout=2)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            query = httpx.post(
                f"{base}/shares/{SHARE}/schemas/sales/tables/stores/query", headers=auth, json={}
            )
            url = json.loads(query.text.splitlines()[2])["file"]["url"]
            assert httpx.get(url, timeout=10).status_code == 200
            assert httpx.get(_forged(url, "ceo"), timeout=10).status_code == 403
            assert httpx.get(url, headers={"Range": "bytes=x"}, timeout=10).status_code == 400
            httpx.get(f"{base}/shares", headers={"Authorization": "Bearer mesh_wrong"})
        finally:
            server.terminate()
            server.wait(timeout=10)
    text = log.read_text()
    assert "Delta Sharing server" in text  # the log was captured
    signature = parse_qs(urlparse(url).query)["sig"][0]
    for secret in (token, signature, "sig=", "mesh_wrong", "Traceback"):
        assert secret not in text, secret
    profile = write_profile(tmp_path / "acme.share", base, token)
    assert token in profile.read_text()  # the control: the token is a real string
