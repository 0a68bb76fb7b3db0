"""Secrets (API keys, bearer tokens, signing and pseudonymisation keys) never reach logs,
Dagster metadata, the audit log or any stored file but the recipient's own profile."""

import logging
import stat
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from dagster_project.assembly.locations import product_assets
from dagster_project.core.credentials import mesh_secret, secret
from dagster_project.lake.resource import MeshResource
from dagster_project.ml.synthetic_product import synthetic_products
from governance.sharing.config import RecipientStore
from governance.sharing.products import shared_products
from governance.sharing.server import SharingServer, create_app
from tests.small_mesh import write_small_mesh

SECRETS = {
    "OPENAI_API_KEY": "sk-test-8f3b1c2d9e7a6b5c4d3e2f1a",
    "MESH_MASK_KEY": "mask-key-5e4d3c2b1a0f9e8d7c6b",
    "MESH_SHARING_SIGNING_KEY": "signing-key-1a2b3c4d5e6f7a8b9c0d",
}


def _stored_text(root: Path) -> str:
    """Every file below the mesh home except the recipient's profile, as text."""
    chunks = []
    for path in root.rglob("*"):
        if path.is_file() and path.suffix != ".share":
            chunks.append(path.read_bytes().decode("latin-1"))
    return "\n".join(chunks)


def test_secrets_never_reach_logs_metadata_or_storage(lake, demo_contracts, monkeypatch, caplog):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    write_small_mesh(lake, demo_contracts)
    domain = [c for k, c in demo_contracts.items() if not k.startswith("governance/")]
    assets = product_assets([*shared_products(domain), *synthetic_products(domain)])
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            assets, resources={"mesh": MeshResource(home=lake.settings.home)}, instance=instance
        )
        assert result.success
        events = instance.all_logs(result.run_id)
        dagster_text = "\n".join(str(e) for e in events)

    _, token = RecipientStore(lake.settings).create("acme", ["retail_partners"])
    profile = Path(lake.settings.home) / "acme.share"
    profile.write_text(token)  # what a profile holds (tested in test_sharing)
    client = TestClient(create_app(SharingServer(lake.settings)))
    auth = {"Authorization": f"Bearer {token}"}
    url = "/delta-sharing/shares/retail_partners/schemas/customers/tables/customer_profiles"
    assert client.post(f"{url}/query", headers=auth, json={}).status_code == 200
    assert (
        client.get("/delta-sharing/shares", headers={"Authorization": "Bearer bad"}).status_code
        == 401
    )

    secrets = [*SECRETS.values(), token]
    logs = caplog.text
    stored = _stored_text(Path(lake.settings.home))
    for value in secrets:
        assert value not in dagster_text, "a secret in Dagster's event log or metadata"
        assert value not in logs, "a secret in the logs"
        assert value not in stored, "a secret in a stored file"
    assert "acme" in stored  # the recipient is there, with its token's hash only
    audit = lake.read("governance/access_audit")
    assert "recipient:acme" in audit["principal"].to_list()


def test_secrets_come_from_env_then_git_ignored_config(tmp_path, monkeypatch, mesh_home):
    monkeypatch.delenv("MESH_MASK_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "workspace.yaml").write_text("load_from: []\n")
    (tmp_path / "meshwork.local.yaml").write_text("MESH_MASK_KEY: from-local-config-123\n")
    assert secret("MESH_MASK_KEY") == "from-local-config-123"
    monkeypatch.setenv("MESH_MASK_KEY", "from-env-4567890")
    assert secret("MESH_MASK_KEY") == "from-env-4567890"


def test_unconfigured_keys_are_generated_once_outside_the_repository(mesh_home, monkeypatch):
    monkeypatch.delenv("MESH_SHARING_SIGNING_KEY", raising=False)
    first = mesh_secret("MESH_SHARING_SIGNING_KEY", mesh_home)
    assert first == mesh_secret("MESH_SHARING_SIGNING_KEY", mesh_home) and len(first) >= 40
    stored = Path(mesh_home.files.path(mesh_home.registry_uri("secrets.local.yaml")))
    assert stored.is_relative_to(Path(mesh_home.home))
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600


@pytest.mark.parametrize("pattern", [".env", "*.local.yaml", ".mesh/"])
def test_git_ignores_secret_files(pattern):
    gitignore = (Path(__file__).resolve().parents[3] / ".gitignore").read_text().splitlines()
    assert pattern in gitignore
