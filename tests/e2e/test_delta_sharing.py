"""Conformance: the official `delta-sharing` Python client against the mesh's server.

The client runs in its own virtualenv (it pins pyarrow <= 23; the mesh uses 25),
created once and cached under pytest's cache folder keyed by the pinned versions. It
lists shares, schemas and tables, reads versions and metadata, loads every shared
table in both response formats (full, `limit`, `version`), including an empty and a
partitioned table, and must get exactly `DeltaTable(...).to_pandas()` of the masked
shared copies. Wrong tokens get 401, unknown tables 404, tampered or expired file
URLs 403; every access lands in the audit log.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pandas as pd
import polars as pl
import pytest
import uvicorn
from deltalake import DeltaTable

from dagster_project.access.policy import AccessPolicy, GovernedReader
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.storage import Lake
from governance.sharing.config import RecipientStore, SharingConfig, write_profile
from governance.sharing.products import read_for_sharing, shared_contract, write_shared_copy
from governance.sharing.server import FileGrant, SharingServer, create_app
from tests.isolated_venv import cached_venv_python
from tests.servers import free_port
from tests.small_mesh import write_small_mesh

CLIENT_PINS = ["delta-sharing==1.4.2", "pandas==2.3.3", "pyarrow==23.0.1"]
SHARE = "retail_partners"
TABLES = [
    "sales.stores",
    "sales.order_lines",
    "sales.daily_sales",
    "customers.customer_profiles",
    "inventory.products",
]
KEYS = {
    "sales.stores": ["store_id"],
    "sales.order_lines": ["order_id", "line_number"],
    "sales.daily_sales": ["order_date", "store_id", "product_id"],
    "customers.customer_profiles": ["customer_id"],
    "inventory.products": ["product_id"],
}


@dataclass
class Served:
    settings: MeshSettings
    lake: Lake
    server: SharingServer
    endpoint: str
    config: SharingConfig
    result: dict
    out: Path

    def shared_uri(self, name: str) -> str:
        schema, table = name.split(".")
        return self.lake.uri(self.config.table(SHARE, schema, table).shared_key)


def _build_shared_copies(lake: Lake, contracts: dict, policy: AccessPolicy) -> None:
    reader = GovernedReader(lake, policy)
    config = SharingConfig.load()
    for product, role in config.materialized():
        source = contracts[product]
        decision = policy.decide(role, source)
        frame = read_for_sharing(reader, source, role)
        write_shared_copy(lake, shared_contract(source, decision, role), frame, decision)


@pytest.fixture(scope="module")
def client_python(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_venv_python(request, tmp_path_factory, "delta-sharing-client", CLIENT_PINS)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, client_python: Path, demo_contracts: dict
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("sharing")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESH_HOME", str(home))
        patch.delenv("MESH_STORAGE_OPTIONS", raising=False)
        settings = MeshSettings(home=str(home))
        lake = Lake(settings)
        write_small_mesh(lake, demo_contracts)
        products = demo_contracts["inventory/products"]
        empty = pl.DataFrame(schema=products.polars_schema)
        lake.write(products, empty, mode="overwrite")  # the empty shared table
        policy = AccessPolicy.load()
        _build_shared_copies(lake, demo_contracts, policy)
        # A second version of the stores copy: version 0 keeps all four stores.
        stores = demo_contracts["sales/stores"]
        lake.write(stores, lake.read("sales/stores").filter(pl.col("store_id") < 4))
        _build_shared_copies(lake, demo_contracts, policy)

        port = free_port()
        endpoint = f"http://127.0.0.1:{port}/delta-sharing"
        recipients = RecipientStore(settings)
        _, token = recipients.create("acme", [SHARE])
        profile = write_profile(home / "acme.share", endpoint, token)
        bad = write_profile(home / "bad.share", endpoint, token[:-4] + "xxxx")
        server = SharingServer(settings)
        uv = uvicorn.Server(uvicorn.Config(create_app(server), port=port, log_level="warning"))
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        deadline = time.time() + 20
        while not uv.started and time.time() < deadline:
            time.sleep(0.05)

        out = home / "client"
        out.mkdir()
        job = home / "job.json"
        job.write_text(
            json.dumps(
                {
                    "profile": str(profile),
                    "bad_profile": str(bad),
                    "share": SHARE,
                    "tables": TABLES,
                    "versions": {"sales.stores": 0},
                }
            )
        )
        client = Path(__file__).parent / "sharing_client.py"
        run = subprocess.run(
            [str(client_python), str(client), str(job), str(out)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads((out / "result.json").read_text())
        try:
            yield Served(settings, lake, server, endpoint, SharingConfig.load(), result, out)
        finally:
            uv.should_exit = True
            thread.join(timeout=10)


def _normalized(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = frame[column].astype("datetime64[us]")
        elif frame[column].dtype == object:
            frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    return frame.sort_values(keys).reset_index(drop=True)


def _assert_same(client: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    assert list(client.columns) == list(expected.columns)
    assert len(client) == len(expected)
    if len(expected):
        pd.testing.assert_frame_equal(
            _normalized(client, keys), _normalized(expected, keys), check_dtype=False
        )


def test_lists_shares_schemas_and_tables(served: Served) -> None:
    assert served.result["shares"] == [SHARE]
    assert served.result["schemas"] == ["customers", "inventory", "sales"]
    assert served.result["all_tables"] == sorted(TABLES)


def test_versions_and_metadata_match_the_shared_copies(served: Served) -> None:
    for name in TABLES:
        table = DeltaTable(served.shared_uri(name))
        assert served.result["versions"][name] == table.version(), name
        meta = served.result["metadata"][name]
        assert meta["version"] == table.version()
        assert [f["name"] for f in meta["schema"]["fields"]] == [
            f.name for f in table.schema().fields
        ]
        assert meta["partition_columns"] == list(table.metadata().partition_columns)
    assert served.result["metadata"]["sales.order_lines"]["partition_columns"] == ["order_date"]
    assert served.result["versions"]["sales.stores"] == 1


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_full_loads_equal_the_delta_tables(served: Served, fmt: str) -> None:
    for name in TABLES:
        client = pd.read_parquet(served.out / f"{name}.{fmt}.full.parquet")
        expected = DeltaTable(served.shared_uri(name)).to_pandas()
        _assert_same(client, expected, KEYS[name])
    empty = pd.read_parquet(served.out / f"inventory.products.{fmt}.full.parquet")
    assert len(empty) == 0 and "product_id" in empty.columns


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_limit_and_version(served: Served, fmt: str) -> None:
    loads = served.result["loads"]
    for name in TABLES:
        assert loads[f"{name}.{fmt}.limit2"] == (0 if name == "inventory.products" else 2)
    old = pd.read_parquet(served.out / f"sales.stores.{fmt}.v0.parquet")
    expected = DeltaTable(served.shared_uri("sales.stores"), version=0).to_pandas()
    assert len(expected) == 4
    _assert_same(old, expected, ["store_id"])


def test_personal_data_leaves_masked(served: Served) -> None:
    frame = pd.read_parquet(served.out / "customers.customer_profiles.parquet.full.parquet")
    real = served.lake.read("customers/customer_profiles")
    assert "full_name" not in frame.columns and "birth_date" not in frame.columns
    assert not set(frame["email"]) & set(real["email"])
    assert all(len(v) == 16 for v in frame["email"])  # keyed hash, not the address
    masked = dict(zip(frame["customer_id"], frame["phone"], strict=True))
    for customer, phone in real.select("customer_id", "phone").iter_rows():
        assert masked[customer].endswith(phone[-4:]) and "*" in masked[customer]


def test_wrong_token_401_unknown_table_404(served: Served) -> None:
    assert served.result["wrong_token"] == 401
    assert served.result["unknown_table"] == 404


def test_file_urls_support_ranges_and_reject_tampering_and_expiry(served: Served) -> None:
    url = served.result["file_urls"][0]
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content[:4] == b"PAR1"
    part = httpx.get(url, headers={"Range": "bytes=0-3"})
    assert part.status_code == 206 and part.content == b"PAR1"
    assert part.headers["content-range"].endswith(f"/{len(whole.content)}")
    tail = httpx.get(url, headers={"Range": "bytes=-4"})
    assert tail.content == whole.content[-4:]
    assert httpx.head(url).headers["content-length"] == str(len(whole.content))

    signature = parse_qs(urlparse(url).query)["sig"][0]
    tampered = url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    assert httpx.get(tampered).status_code == 403
    assert httpx.get(url.replace("/stores/", "/order_lines/")).status_code == 403

    parsed = urlparse(url)
    path = parsed.path.split("/sales/stores/", 1)[1]
    table = served.config.table(SHARE, "sales", "stores")
    version = int(parse_qs(parsed.query)["v"][0])
    grant = FileGrant("acme", table, path, int(time.time()) - 1, version)
    expired = url.replace(parse_qs(parsed.query)["exp"][0], str(grant.expires)).replace(
        signature, grant.signature(served.server.key)
    )
    response = httpx.get(expired)
    assert response.status_code == 403 and "expired" in response.json()["message"]


def test_every_access_is_audited(served: Served) -> None:
    audit = served.lake.read("governance/access_audit")
    acme = audit.filter(pl.col("principal") == "recipient:acme")
    assert set(acme["channel"]) == {"sharing"}
    allowed = acme.filter(pl.col("decision") == "allow")
    assert set(allowed["product"]) >= {"sales/stores", "customers/customer_profiles"}
    assert allowed["rows"].max() > 0
    reasons = acme.filter(pl.col("decision") == "deny")["reason"].to_list()
    assert any("expired" in r for r in reasons)  # the signature held: acme is verified
    assert any("file " in r for r in allowed["reason"])  # each download
    # A tampered URL proves nobody: audited under the fixed name, with what it claimed.
    forged = audit.filter(pl.col("principal") == "sharing:unverified")["reason"].to_list()
    assert any("signature mismatch; claims 'acme'" in r for r in forged)
    assert any("bearer token" in r for r in forged)  # the client's wrong-token profile


def test_recipient_without_the_share_is_forbidden(served: Served) -> None:
    _, token = RecipientStore(served.settings).create("nobody", [])
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.get(f"{served.endpoint}/shares/{SHARE}/schemas", headers=headers)
    assert response.status_code == 403
    assert httpx.get(f"{served.endpoint}/shares", headers=headers).json()["items"] == []
