"""API keys for the mesh's HTTP API: who is calling, and as which access-policy role.

    mesh api-key create kim --role steward [--days 90]   # prints the key once
    mesh api-key list
    mesh api-key revoke kim

A request with `Authorization: Bearer <key>` reads as the key's role and is audited
under `api:<name>`. A request without a key gets the anonymous role (`analyst` unless
`MESH_API_ANONYMOUS_ROLE` says otherwise; `none` means every request needs a key).
Keys are 256-bit random strings kept only as SHA-256 digests in the mesh home's
registry zone (a fast hash is enough for random secrets; nothing guessable is stored).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import yaml

from dagster_project.core.settings import MeshSettings, Settings
from dagster_project.core.yamlfile import load_yaml

KEY_PREFIX = "mwk_"
NO_ANONYMOUS = "none"


@dataclass
class ApiKey:
    name: str
    role: str
    key_sha256: str
    created_at: str
    expires_at: str | None = None

    def expired(self, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (now or datetime.now(UTC)) >= datetime.fromisoformat(self.expires_at)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyStore:
    """The API's keys, one per name, in `registry/api/keys.yaml` (owner-readable only)."""

    def __init__(self, settings: MeshSettings | None = None):
        self.settings = settings or MeshSettings()
        self.uri = self.settings.registry_uri("api", "keys.yaml")

    def load(self) -> dict[str, ApiKey]:
        raw = load_yaml(self.settings.files.read_text_or(self.uri, "")) or {}
        return {name: ApiKey(name=name, **fields) for name, fields in raw.items()}

    def _save(self, keys: dict[str, ApiKey]) -> None:
        document = {n: {k: v for k, v in asdict(a).items() if k != "name"} for n, a in keys.items()}
        self.settings.files.write_private_text(self.uri, yaml.safe_dump(document, sort_keys=True))

    def create(self, name: str, role: str, *, days: float | None = None) -> tuple[ApiKey, str]:
        """A new key for `name` (replacing its old one) and the clear key, shown once."""
        clear = KEY_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires = (now + timedelta(days=days)).isoformat(timespec="seconds") if days else None
        created = ApiKey(name, role, digest(clear), now.isoformat(timespec="seconds"), expires)
        keys = self.load()
        keys[name] = created
        self._save(keys)
        return created, clear

    def revoke(self, name: str) -> None:
        keys = self.load()
        if name not in keys:
            raise KeyError(f"no API key named {name!r}")
        del keys[name]
        self._save(keys)

    def authenticate(self, clear: str) -> ApiKey | None:
        """The key's record if it is known and not expired (constant-time comparison)."""
        wanted = digest(clear)
        for key in self.load().values():
            if hmac.compare_digest(key.key_sha256, wanted):
                return None if key.expired() else key
        return None


def anonymous_role() -> str | None:
    """The role of requests without a key, or None when every request needs one."""
    role = Settings.from_env().api_anonymous_role
    return None if role.lower() in ("", NO_ANONYMOUS) else role
