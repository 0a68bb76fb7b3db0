"""Secrets: tokens and keys come from the environment or from config files git ignores.

Lookup order for `secret(NAME)`: the environment variable `NAME`, then `NAME` in
`meshwork.local.yaml` at the workspace root (git ignores `*.local.yaml` and `.env`).
Keys the mesh needs but nobody configured (the pseudonymisation key, the URL signing
key) are generated once per mesh home and kept in `registry/secrets.local.yaml` there,
never in the repository. Nothing here logs a value.
"""

from __future__ import annotations

import secrets as _random

import yaml

from dagster_project.core.settings import SECRET_NAME, MeshSettings, Settings
from dagster_project.core.workspace import find_root
from dagster_project.core.yamlfile import load_yaml

LOCAL_CONFIG = "meshwork.local.yaml"
MESH_SECRETS = "secrets.local.yaml"


def _local_config() -> dict[str, str]:
    try:
        path = find_root() / LOCAL_CONFIG
    except FileNotFoundError:
        return {}
    if not path.exists():
        return {}
    return {str(k): str(v) for k, v in (load_yaml(path.read_text()) or {}).items()}


def secret(name: str) -> str | None:
    """The value of a secret from the environment or the git-ignored local config."""
    if not SECRET_NAME.search(name):  # the environment's secrets are the names matching it
        raise ValueError(f"{name}: a secret's name ends in {SECRET_NAME.pattern}")
    return Settings.from_env().secrets.get(name) or _local_config().get(name)


def mesh_secret(name: str, settings: MeshSettings) -> str:
    """A configured secret, else a random one generated once for this mesh home."""
    configured = secret(name)
    if configured:
        return configured
    uri = settings.registry_uri(MESH_SECRETS)
    stored = load_yaml(settings.files.read_text_or(uri, "")) or {}
    if name not in stored:
        stored[name] = _random.token_urlsafe(32)
        settings.files.write_private_text(uri, yaml.safe_dump(stored))
    return str(stored[name])
