"""Production profile: the whole mesh home on an S3-compatible object store (a moto
server on loopback): landing files and registry through pyarrow.fs, Delta tables through
delta-rs and polars, all configured from the environment."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import boto3
import dagster as dg
import pytest
import requests

from dagster_project.core.settings import MeshSettings
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import Lake
from demo.simulator import simulate
from tests.servers import free_port

BUCKET = "mesh-lake"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 in its own process (in-process, delta-rs' blocking calls starve it)."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except (requests.ConnectionError, requests.Timeout):  # a busy machine: keep waiting
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def s3_home(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> MeshSettings:
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,  # pyarrow.fs, boto3 and delta-rs all read it
    }
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    # delta-rs: plain HTTP is opt-in; S3 commits need conditional puts (moto supports them).
    options = {"AWS_ALLOW_HTTP": "true", "aws_conditional_put": "etag"}
    monkeypatch.setenv("MESH_STORAGE_OPTIONS", json.dumps(options))
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("MESH_HOME", f"s3://{BUCKET}/mesh")
    return MeshSettings()


def test_a_product_lands_and_is_written_and_read_on_s3(s3_home: MeshSettings) -> None:
    assert not s3_home.is_local
    simulate(s3_home, days=1, scale=500, start=date(2025, 3, 1))
    assert s3_home.files.list_files(s3_home.landing_uri("sales", "stores"))
    from domains.sales.definitions import defs as sales

    stores = [
        a
        for a in sales.assets
        if isinstance(a, dg.AssetsDefinition) and a.key == dg.AssetKey(["sales", "stores"])
    ]
    result = dg.materialize(stores, resources={"mesh": MeshResource()})
    assert result.success
    lake = Lake(s3_home)
    assert lake.uri("sales/stores").startswith(f"s3://{BUCKET}/mesh/lake/")
    table = lake.read("sales/stores")
    assert table.height > 0 and lake.info("sales/stores").rows == table.height
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert any(k.startswith("mesh/lake/sales/stores/_delta_log/") for k in keys)
    assert any(k.startswith("mesh/registry/") for k in keys)  # loaded-file records
