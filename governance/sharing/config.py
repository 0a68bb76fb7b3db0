"""Shares (shares.yaml beside workspace.yaml) and recipients (hashed bearer tokens).

Recipients live in `MESH_HOME/registry/sharing/recipients.yaml`, outside the
repository: a name, the shares it may read, an optional expiry and the SHA-256 of its
bearer token. Tokens are 256-bit random strings, so a fast hash is enough (a slow
password hash guards guessable secrets); the clear token exists only in the profile
file handed to the recipient.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from dagster_project import MeshSettings, Settings, find_root

SHARES_FILE = "shares.yaml"  # beside workspace.yaml: a mesh's shares are its own
TOKEN_PREFIX = "mesh_"
_NAMESPACE = uuid.UUID("5b0f3c2e-1f6a-4b7e-9a53-6d2c1e0a8f11")


@dataclass(frozen=True)
class SharedTable:
    share: str
    schema: str
    name: str
    product: str  # the source product, domain/product
    role: str  # the access-policy role whose masks apply

    @property
    def shared_key(self) -> str:
        """The masked, materialized copy the server serves."""
        return shared_key(self.product, self.role)

    @property
    def id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.share}.{self.schema}.{self.name}"))


def shared_key(product: str, role: str) -> str:
    domain, name = product.split("/")
    return f"{domain}/{name}_shared_{role}"


@dataclass(frozen=True)
class Share:
    name: str
    role: str
    description: str
    tables: tuple[SharedTable, ...]

    @property
    def id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, self.name))

    @property
    def schemas(self) -> list[str]:
        return list(dict.fromkeys(t.schema for t in self.tables))


def default_shares_path() -> Path | None:
    """shares.yaml beside workspace.yaml, if the workspace has one."""
    try:
        path = find_root() / SHARES_FILE
    except FileNotFoundError:
        return None
    return path if path.exists() else None


@dataclass(frozen=True)
class SharingConfig:
    shares: dict[str, Share]

    @classmethod
    def load(cls, path: Path | str | None = None) -> SharingConfig:
        """The shares of `path`, else of `MESH_SHARES`, else of the workspace's
        shares.yaml; none when the workspace has no such file."""
        path = path or Settings.from_env().shares_file or default_shares_path()
        if path is None:
            return cls({})
        document = yaml.safe_load(Path(path).read_text()) or {}
        shares = {}
        for name, raw in (document.get("shares") or {}).items():
            tables = tuple(
                SharedTable(name, schema, table, product, raw["role"])
                for schema, entries in (raw.get("schemas") or {}).items()
                for table, product in (entries or {}).items()
            )
            shares[name] = Share(name, raw["role"], raw.get("description", ""), tables)
        return cls(shares)

    def share(self, name: str) -> Share | None:
        return next((s for s in self.shares.values() if s.name.lower() == name.lower()), None)

    def table(self, share: str, schema: str, table: str) -> SharedTable | None:
        found = self.share(share)
        if found is None:
            return None
        return next(
            (
                t
                for t in found.tables
                if t.schema.lower() == schema.lower() and t.name.lower() == table.lower()
            ),
            None,
        )

    def materialized(self) -> list[tuple[str, str]]:
        """(product, role) pairs whose masked copies governance builds, sorted."""
        return sorted({(t.product, t.role) for s in self.shares.values() for t in s.tables})


# -- recipients --------------------------------------------------------------------------
def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Recipient:
    name: str
    shares: list[str]
    token_sha256: str
    created_at: str
    expires_at: str | None = None
    comment: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def expiry(self) -> datetime | None:
        return datetime.fromisoformat(self.expires_at) if self.expires_at else None

    def expired(self, now: datetime | None = None) -> bool:
        expiry = self.expiry
        return expiry is not None and (now or datetime.now(UTC)) >= expiry


class RecipientStore:
    """Recipients of the mesh's shares, kept in the mesh home's registry zone."""

    def __init__(self, settings: MeshSettings):
        self.settings = settings
        self.uri = settings.registry_uri("sharing", "recipients.yaml")

    def load(self) -> dict[str, Recipient]:
        if not self.settings.files.exists(self.uri):
            return {}
        raw = yaml.safe_load(self.settings.files.read_text(self.uri)) or {}
        return {name: Recipient(name=name, **fields) for name, fields in raw.items()}

    def save(self, recipients: dict[str, Recipient]) -> None:
        document = {
            name: {k: v for k, v in asdict(r).items() if k != "name"}
            for name, r in sorted(recipients.items())
        }
        self.settings.files.write_private_text(self.uri, yaml.safe_dump(document, sort_keys=False))

    def create(
        self,
        name: str,
        shares: list[str],
        *,
        days: float | None = None,
        comment: str = "",
    ) -> tuple[Recipient, str]:
        """A new recipient (or new shares and token for an existing one) and its token."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        recipients = self.load()
        recipient = Recipient(
            name=name,
            shares=sorted(set(shares)),
            token_sha256=hash_token(token),
            created_at=now.isoformat(timespec="seconds"),
            expires_at=(now + timedelta(days=days)).isoformat(timespec="seconds") if days else None,
            comment=comment,
        )
        recipients[name] = recipient
        self.save(recipients)
        return recipient, token

    def rotate(self, name: str, *, days: float | None = None) -> tuple[Recipient, str]:
        """A new token for an existing recipient; the old one stops working."""
        recipients = self.load()
        if name not in recipients:
            raise KeyError(f"no recipient {name}")
        old = recipients[name]
        return self.create(name, old.shares, days=days, comment=old.comment)

    def authenticate(self, token: str) -> Recipient | None:
        """The recipient holding this token, if it is valid and not expired."""
        digest = hash_token(token)
        for recipient in self.load().values():
            if hmac.compare_digest(recipient.token_sha256, digest):
                return None if recipient.expired() else recipient
        return None


def profile(endpoint: str, token: str, expires_at: str | None = None) -> dict[str, Any]:
    """A Delta Sharing profile (the file a recipient loads in its client)."""
    document: dict[str, Any] = {
        "shareCredentialsVersion": 1,
        "endpoint": endpoint,
        "bearerToken": token,
    }
    if expires_at:
        document["expirationTime"] = expires_at.replace("+00:00", "Z")
    return document


def write_profile(path: Path, endpoint: str, token: str, expires_at: str | None = None) -> Path:
    """Write the profile readable by its owner only (it holds the clear token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(profile(endpoint, token, expires_at), out, indent=2)
    return path
