"""A Delta Sharing server (the open REST protocol) over the mesh's masked shared copies.

Endpoints under `/delta-sharing`: list shares, get a share, list schemas, tables and
all tables; table version (HEAD/GET, `startingTimestamp`), metadata and query (POST:
`limitHint`, `version`, `timestamp`, `jsonPredicateHints` on partition columns; SQL
`predicateHints` are ignored, which the protocol allows). Responses are NDJSON in the
`parquet` format, or the `delta` format when the client's `delta-sharing-capabilities`
header asks for it only. Data files are served by this server itself through URLs
signed with HMAC-SHA256 that expire (`Range` requests supported); a tampered or
expired URL gets 403.

Every data access is authorized against the access policy for the share's role (the
grant must still hold and the shared copy must match the policy's current masks). A
version or timestamp (time travel) is served only if today's policy would show its data
the same way: each column it holds still shared, with the mask it was built with (the
masks each build used are recorded in its commit; see `governance.sharing.products`).

Every decision - listing, table version, metadata, query and each file download, allowed
or denied - is audited in `governance/access_audit` under a verified principal
(`recipient:<name>`, the bearer token's owner or the name a valid URL signature
covers). Requests nobody can be verified for (no or unknown token, a forged or unsigned
URL) are audited as `sharing:unverified` with what they claimed in the reason, at most
`MESH_UNVERIFIED_AUDITS_PER_MINUTE` rows a minute. Neither tokens nor signed URLs are
logged: `mesh share serve` runs without uvicorn's access log, and `create_app` strips
query strings from it for any other launcher.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import pyarrow as pa
from deltalake import DeltaTable
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

from dagster_project import (
    AccessPolicy,
    AuditRecord,
    BodyLimit,
    Decision,
    GovernedReader,
    Lake,
    Limits,
    MeshSettings,
    get_limits,
    get_settings,
    mesh_secret,
)
from governance.sharing.config import (
    Recipient,
    RecipientStore,
    Share,
    SharedTable,
    SharingConfig,
    hash_token,
)
from governance.sharing.products import MASKS_RECORD, readable_under

PREFIX = "/delta-sharing"
SIGNING_KEY = "MESH_SHARING_SIGNING_KEY"
URL_TTL_SECONDS = 900
NDJSON = "application/x-ndjson; charset=utf-8"
CAPABILITIES = "delta-sharing-capabilities"
VERSION_HEADER = "Delta-Table-Version"
CHUNK = 1 << 20
UNVERIFIED = "sharing:unverified"  # the audit's principal for requests nobody is verified for
NO_ROLE = "none"
CLAIM_CHARS = 80
# Commits that rewrite files without changing what they hold.
MAINTENANCE = {"OPTIMIZE", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES"}


class SharingError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    body = {"errorCode": code, "message": message}
    return JSONResponse(body, status_code=status, headers=headers)


def _denied(message: str) -> SharingError:
    return SharingError(403, "PERMISSION_DENIED", message)


def _claim(text: str) -> str:
    """What an unverified caller claimed, quoted and cut short for the audit."""
    return repr(text[:CLAIM_CHARS] + ("..." if len(text) > CLAIM_CHARS else ""))


class AuditBudget:
    """At most `per_minute` rows a minute for unverified requests: a flood of forged
    tokens cannot fill the audit. Rows left out are counted into the next one."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute, self.clock = per_minute, clock
        self._lock = threading.Lock()
        self._window, self._used, self.suppressed = clock(), 0, 0

    def take(self) -> int | None:
        """How many rows were left out before this one, or None if this one is too."""
        with self._lock:
            now = self.clock()
            if now - self._window >= 60:
                self._window, self._used = now, 0
            if self._used >= self.per_minute:
                self.suppressed += 1
                return None
            self._used += 1
            left_out, self.suppressed = self.suppressed, 0
            return left_out


class QueryStringFilter(logging.Filter):
    """Strips query strings (signatures of file URLs) from uvicorn's access log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


# -- signed file URLs --------------------------------------------------------------------
@dataclass(frozen=True)
class FileGrant:
    """What a signed URL lets its holder download: one file of one shared table."""

    recipient: str
    table: SharedTable
    path: str
    expires: int
    version: int  # the table version the file was handed out for

    def payload(self) -> bytes:
        t = self.table
        fields = [self.recipient, t.share, t.schema, t.name, self.path, str(self.expires)]
        return "\n".join([*fields, str(self.version)]).encode()

    def signature(self, key: bytes) -> str:
        return hmac.new(key, self.payload(), hashlib.sha256).hexdigest()


def _stats(row: dict[str, Any]) -> str:
    def plain(values: dict[str, Any] | None) -> dict[str, Any]:
        out = {}
        for k, v in (values or {}).items():
            if v is None:
                continue
            out[k] = v.isoformat() if isinstance(v, date | datetime) else v
        return out

    return json.dumps(
        {
            "numRecords": row.get("num_records"),
            "minValues": plain(row.get("min")),
            "maxValues": plain(row.get("max")),
            "nullCount": plain(row.get("null_count")),
        },
        default=str,
    )


def _partition_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if isinstance(value, date) else str(value)


def _partition_strings(row: dict[str, Any]) -> dict[str, str | None]:
    return {k: _partition_value(v) for k, v in (row.get("partition") or {}).items()}


def _parse_timestamp(text: str) -> datetime:
    """The protocol's `yyyy-[m]m-[d]d hh:mm:ss[.f...]` (UTC here), or ISO 8601."""
    value = text.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise SharingError(400, "INVALID_PARAMETER_VALUE", f"bad timestamp {text!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- JSON predicate hints (best effort, partition columns only) ----------------------------
_COMPARE = {
    "equal": lambda a, b: a == b,
    "lessThan": lambda a, b: a < b,
    "lessThanOrEqual": lambda a, b: a <= b,
    "greaterThan": lambda a, b: a > b,
    "greaterThanOrEqual": lambda a, b: a >= b,
}


def _typed(value: str | None, value_type: str) -> Any:
    if value is None:
        return None
    if value_type in {"int", "long"}:
        return int(value)
    if value_type == "bool":
        return value == "true"
    if value_type == "date":
        return date.fromisoformat(value)
    return value


def _evaluate(node: dict[str, Any], partition: dict[str, str | None]) -> Any:
    op = node["op"]
    if op == "column":
        if node["name"] not in partition:
            raise KeyError(node["name"])  # not a partition column: cannot filter
        return _typed(partition[node["name"]], node.get("valueType", "string"))
    if op == "literal":
        return _typed(node.get("value"), node.get("valueType", "string"))
    children = node.get("children") or []
    if op == "and":
        return all(_evaluate(c, partition) for c in children)
    if op == "or":
        return any(_evaluate(c, partition) for c in children)
    if op == "not":
        return not _evaluate(children[0], partition)
    if op == "isNull":
        return _evaluate(children[0], partition) is None
    left, right = (_evaluate(c, partition) for c in children)
    return False if left is None or right is None else _COMPARE[op](left, right)


def keep_file(hints: str | None, partition: dict[str, str | None]) -> bool:
    """Whether a file may hold rows matching the hints; any doubt keeps it."""
    if not hints:
        return True
    try:
        return bool(_evaluate(json.loads(hints), partition))
    except Exception:  # the protocol: on any error, skip filtering
        return True


# -- the server ------------------------------------------------------------------------------
class SharingServer:
    def __init__(
        self,
        settings: MeshSettings | None = None,
        *,
        config: SharingConfig | None = None,
        policy: AccessPolicy | None = None,
        url_ttl: int = URL_TTL_SECONDS,
        limits: Limits | None = None,
    ):
        self.settings = settings or get_settings()
        self.lake = Lake(self.settings)
        self.config = config or SharingConfig.load()
        self.reader = GovernedReader(self.lake, policy or AccessPolicy.load())
        self.recipients = RecipientStore(self.settings)
        self.url_ttl = url_ttl
        self.limits = limits or get_limits()
        self.unverified = AuditBudget(self.limits.unverified_audits_per_minute)
        self.key = mesh_secret(SIGNING_KEY, self.settings).encode()

    # -- authentication and authorization ----------------------------------------------
    def authenticate(self, request: Request) -> Recipient:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self.audit_unverified(request.url.path, "no bearer token")
            raise SharingError(401, "UNAUTHENTICATED", "missing bearer token")
        recipient = self.recipients.authenticate(token.strip())
        if recipient is None:
            digest = hash_token(token.strip())[:12]
            self.audit_unverified(
                request.url.path, f"unknown or expired bearer token (sha256 {digest}...)"
            )
            raise SharingError(401, "UNAUTHENTICATED", "invalid or expired bearer token")
        return recipient

    def share_for(self, recipient: Recipient, name: str) -> Share:
        share = self.config.share(name)
        if share is None:
            error = SharingError(404, "RESOURCE_DOES_NOT_EXIST", f"share {name} not found")
        elif share.name not in recipient.shares:
            error = _denied(f"share {share.name} is not granted")
        else:
            return share
        role = share.role if share else NO_ROLE
        self.audit_resource(recipient, f"share:{name[:CLAIM_CHARS]}", role, False, error.message)
        raise error

    def listed(self, recipient: Recipient, share: Share | None, what: str) -> None:
        """Audit a listing the recipient was allowed."""
        resource = f"share:{share.name}" if share else "shares"
        self.audit_resource(recipient, resource, share.role if share else NO_ROLE, True, what)

    def table_for(self, recipient: Recipient, share: str, schema: str, table: str) -> SharedTable:
        found = self.share_for(recipient, share)
        shared = self.config.table(found.name, schema, table)
        if shared is None:
            message = f"table {share}.{schema}.{table} not found"
            resource = f"{found.name}.{schema}.{table}"[: 3 * CLAIM_CHARS]
            self.audit_resource(recipient, resource, found.role, False, message)
            raise SharingError(404, "RESOURCE_DOES_NOT_EXIST", message)
        return shared

    @contextmanager
    def audited(self, recipient: Recipient | str, table: SharedTable) -> Iterator[None]:
        """Any refusal inside is audited as a denial of the table to the recipient."""
        try:
            yield
        except SharingError as exc:
            self.audit(recipient, table, Decision(False, exc.message), None)
            raise

    def authorize(
        self, recipient: Recipient, table: SharedTable, version: DeltaTable | None = None
    ) -> Decision:
        """The policy must still grant the share's role the product, the shared copy must
        hold exactly the columns the policy lets that role see, and the version served
        (the current one unless `version`) must have been built as today's policy would
        show it. Call inside `audited`."""
        try:
            contract = self.reader.contract(table.product)
        except KeyError:
            raise _denied(f"no product {table.product}") from None
        decision = self.reader.authorize(table.product, table.role, contract=contract)
        if not decision.allowed:
            raise _denied(decision.reason)
        if not self.lake.exists(table.shared_key):
            raise SharingError(
                404, "RESOURCE_DOES_NOT_EXIST", f"{table.shared_key} is not materialized yet"
            )
        current = self.lake.table(table.shared_key)
        if [f.name for f in current.schema().fields] != decision.visible:
            raise _denied(f"{table.shared_key} does not match the access policy; rebuild it")
        served = version or current
        problem = self._built_as_today(current, served, decision)
        if problem is not None:
            which = "the current version" if version is None else f"version {served.version()}"
            raise _denied(f"{which} of {table.shared_key} is withheld: {problem}")
        return decision

    @staticmethod
    def _built_as_today(current: DeltaTable, served: DeltaTable, decision: Decision) -> str | None:
        """None if every write the served version holds data of recorded masks that
        today's decision shows the same way; else why not."""
        version = served.version()
        columns = {f.name for f in served.schema().fields}
        commits = sorted(
            (c for c in current.history() if c["version"] <= version),
            key=lambda c: -c["version"],
        )
        for commit in commits:
            if commit.get("operation") in MAINTENANCE:
                continue
            if MASKS_RECORD not in commit:
                return f"version {commit['version']} was built without a record of its masks"
            recorded = json.loads(commit[MASKS_RECORD])
            if not columns <= set(recorded):
                return f"version {commit['version']} holds columns its record does not"
            problem = readable_under(recorded, decision)
            if problem is not None:
                return problem
            parameters = commit.get("operationParameters") or {}
            if parameters.get("mode") == "Overwrite" and not parameters.get("predicate"):
                return None  # older files are no longer part of this version
        return None

    def audit(
        self, recipient: Recipient | str, table: SharedTable, decision: Decision, rows: int | None
    ) -> None:
        name = recipient if isinstance(recipient, str) else recipient.name
        self.reader.audit(
            AuditRecord(f"recipient:{name}", table.role, "sharing", table.product, decision, rows)
        )

    def audit_resource(
        self, recipient: Recipient, resource: str, role: str, allowed: bool, reason: str
    ) -> None:
        """Audit a decision on a share or a table that is not a product."""
        principal = f"recipient:{recipient.name}"
        decision = Decision(allowed, reason)
        self.reader.audit(AuditRecord(principal, role, "sharing", resource, decision, None))

    def audit_unverified(self, path: str, reason: str, claim: str | None = None) -> None:
        """Audit a request nobody could be verified for, under the fixed principal."""
        left_out = self.unverified.take()
        if left_out is None:
            return
        text = f"{reason}; claims {_claim(claim)}" if claim is not None else reason
        if left_out:
            text += f" ({left_out} more unverified request(s) not audited before this one)"
        product, role = self._claimed(path)
        self.reader.audit(
            AuditRecord(UNVERIFIED, role, "sharing", product, Decision(False, text), None)
        )

    def _claimed(self, path: str) -> tuple[str, str]:
        """The product (and role) a request's path names, as far as it names one."""
        parts = path.removeprefix(PREFIX).strip("/").split("/")
        if len(parts) >= 4 and parts[0] == "files":
            table = self.config.table(*parts[1:4])
        elif len(parts) >= 6 and parts[0] == "shares" and parts[2] == "schemas":
            table = self.config.table(parts[1], parts[3], parts[5])
        else:
            share = self.config.share(parts[1]) if len(parts) >= 2 else None
            return (f"share:{share.name}", share.role) if share else ("shares", NO_ROLE)
        return (table.product, table.role) if table else ("shares", NO_ROLE)

    # -- Delta tables --------------------------------------------------------------------
    def delta_table(
        self, table: SharedTable, version: int | None = None, timestamp: str | None = None
    ) -> DeltaTable:
        uri = self.lake.uri(table.shared_key)
        options = self.lake.storage_options
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise SharingError(400, "INVALID_PARAMETER_VALUE", "version must be an integer")
        if timestamp is not None and not isinstance(timestamp, str):
            raise SharingError(400, "INVALID_PARAMETER_VALUE", "timestamp must be a string")
        try:
            delta = DeltaTable(uri, storage_options=options)
            if version is not None:
                if version < 0 or version > delta.version():
                    raise SharingError(
                        400, "INVALID_PARAMETER_VALUE", f"no version {version} of the table"
                    )
                delta = DeltaTable(uri, version=version, storage_options=options)
            elif timestamp is not None:
                delta.load_as_version(_parse_timestamp(timestamp))
        except SharingError:
            raise
        except Exception as exc:
            raise SharingError(400, "INVALID_PARAMETER_VALUE", str(exc)) from exc
        return delta

    def version_at(self, table: SharedTable, starting_timestamp: str | None) -> int:
        delta = self.delta_table(table)
        if starting_timestamp is None:
            return delta.version()
        wanted = _parse_timestamp(starting_timestamp).timestamp() * 1000
        history = sorted(delta.history(), key=lambda c: c["version"])
        for commit in history:
            if commit["timestamp"] >= wanted:
                return int(commit["version"])
        raise SharingError(
            400, "INVALID_PARAMETER_VALUE", "startingTimestamp is after the latest version"
        )

    @staticmethod
    def _schema_string(delta: DeltaTable, delta_format: bool) -> str:
        schema = delta.schema().to_json()
        if delta_format:
            return schema
        # Parquet-format clients know `timestamp`, not Delta's newer `timestamp_ntz`
        # (the files hold the same microseconds without a zone either way).
        return schema.replace('"timestamp_ntz"', '"timestamp"')

    def protocol_line(self, delta: DeltaTable, delta_format: bool) -> dict[str, Any]:
        if not delta_format:
            return {"protocol": {"minReaderVersion": 1}}
        p = delta.protocol()
        protocol: dict[str, Any] = {
            "minReaderVersion": p.min_reader_version,
            "minWriterVersion": p.min_writer_version,
        }
        if p.reader_features:
            protocol["readerFeatures"] = list(p.reader_features)
        if p.writer_features:
            protocol["writerFeatures"] = list(p.writer_features)
        return {"protocol": {"deltaProtocol": protocol}}

    def metadata_line(
        self, delta: DeltaTable, table: SharedTable, delta_format: bool, files: pa.Table
    ) -> dict[str, Any]:
        m = delta.metadata()
        size = sum(files.column("size_bytes").to_pylist())
        if delta_format:
            return {
                "metaData": {
                    "version": delta.version(),
                    "size": size,
                    "numFiles": files.num_rows,
                    "deltaMetadata": {
                        "id": m.id,
                        "name": table.name,
                        "description": m.description,
                        "format": {"provider": "parquet", "options": {}},
                        "schemaString": self._schema_string(delta, True),
                        "partitionColumns": list(m.partition_columns),
                        "configuration": dict(m.configuration),
                        "createdTime": m.created_time,
                    },
                }
            }
        return {
            "metaData": {
                "id": m.id,
                "name": table.name,
                "description": m.description,
                "format": {"provider": "parquet"},
                "schemaString": self._schema_string(delta, False),
                "partitionColumns": list(m.partition_columns),
                "configuration": dict(m.configuration),
                "version": delta.version(),
                "size": size,
                "numFiles": files.num_rows,
            }
        }

    def file_lines(
        self,
        request: Request,
        recipient: Recipient,
        table: SharedTable,
        files: list[dict[str, Any]],
        delta_format: bool,
        version: int,
    ) -> list[dict[str, Any]]:
        expires = int(time.time()) + self.url_ttl
        lines = []
        for row in files:
            grant = FileGrant(recipient.name, table, row["path"], expires, version)
            url = self.file_url(request, grant)
            partition = _partition_strings(row)
            file_id = hashlib.md5(row["path"].encode()).hexdigest()  # stable per file
            if delta_format:
                add = {
                    "path": url,
                    "partitionValues": partition,
                    "size": row["size_bytes"],
                    "modificationTime": row["modification_time"],
                    "dataChange": True,
                    "stats": _stats(row),
                }
                lines.append(
                    {
                        "file": {
                            "id": file_id,
                            "size": row["size_bytes"],
                            "expirationTimestamp": expires * 1000,
                            "deltaSingleAction": {"add": add},
                        }
                    }
                )
            else:
                lines.append(
                    {
                        "file": {
                            "url": url,
                            "id": file_id,
                            "partitionValues": partition,
                            "size": row["size_bytes"],
                            "stats": _stats(row),
                            "version": version,
                            "expirationTimestamp": expires * 1000,
                        }
                    }
                )
        return lines

    def file_url(self, request: Request, grant: FileGrant) -> str:
        """`sp=r` (signed permission: read) is the query field by which Delta readers such
        as delta-kernel recognise a presigned URL and fetch it over HTTP."""
        t = grant.table
        base = str(request.base_url).rstrip("/")
        token = base64.urlsafe_b64encode(grant.recipient.encode()).decode().rstrip("=")
        return (
            f"{base}{PREFIX}/files/{quote(t.share)}/{quote(t.schema)}/{quote(t.name)}/"
            f"{quote(grant.path)}?sp=r&r={token}&exp={grant.expires}&v={grant.version}"
            f"&sig={grant.signature(self.key)}"
        )

    def verify_file(
        self, request: Request, share: str, schema: str, table: str, path: str
    ) -> tuple[SharedTable, FileGrant]:
        """The table and grant of a file URL whose signature holds; anything else is
        refused and audited as unverified, with the recipient the URL claims."""
        params = request.query_params
        shared = self.config.table(share, schema, table)
        claimed = None
        try:
            padded = params["r"] + "=" * (-len(params["r"]) % 4)
            claimed = base64.urlsafe_b64decode(padded).decode()
            expires, version = int(params["exp"]), int(params["v"])
            signature = params["sig"]
        except (KeyError, ValueError) as exc:
            self.audit_unverified(request.url.path, "unsigned or malformed file URL", claimed)
            raise _denied("unsigned file URL") from exc
        grant = None
        if shared is not None and ".." not in path.split("/"):
            grant = FileGrant(claimed, shared, path, expires, version)
        if grant is None or not hmac.compare_digest(grant.signature(self.key), signature):
            self.audit_unverified(request.url.path, "file URL signature mismatch", claimed)
            raise _denied("invalid file URL signature")
        return shared, grant

    def check_download(self, grant: FileGrant) -> Decision:
        """A verified URL still needs: not expired, its recipient still holding the share,
        and its version still servable under today's policy. Call inside `audited`."""
        if grant.expires < time.time():
            raise _denied("file URL expired")
        recipient = self.recipients.load().get(grant.recipient)
        if recipient is None or recipient.expired():
            raise _denied(f"recipient {grant.recipient} no longer exists or has expired")
        if grant.table.share not in recipient.shares:
            raise _denied(f"share {grant.table.share} is no longer granted")
        version = self.delta_table(grant.table, grant.version)
        return self.authorize(recipient, grant.table, version)


def _capabilities(request: Request) -> bool:
    """True when the answer should be in the delta format: the client accepts only it.
    A client that accepts both gets parquet, which every client reads."""
    header = request.headers.get(CAPABILITIES, "")
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "responseformat":
            formats = {f.strip().lower() for f in value.split(",") if f.strip()}
            return "delta" in formats and "parquet" not in formats
    return False


def _ndjson(lines: list[dict[str, Any]], version: int, delta_format: bool) -> Response:
    body = "".join(json.dumps(line, default=str) + "\n" for line in lines)
    headers = {
        VERSION_HEADER: str(version),
        CAPABILITIES: f"responseformat={'delta' if delta_format else 'parquet'}",
    }
    return Response(body, media_type=NDJSON, headers=headers)


def _page(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    """Offset pagination: `maxResults` items from the offset in `pageToken`."""
    params = request.query_params
    try:
        start = (
            int(base64.urlsafe_b64decode(params["pageToken"]).decode())
            if params.get("pageToken")
            else 0
        )
        size = int(params["maxResults"]) if params.get("maxResults") else len(items)
    except ValueError as exc:
        raise SharingError(400, "INVALID_PARAMETER_VALUE", "bad maxResults or pageToken") from exc
    if size < 0 or start < 0:
        raise SharingError(400, "INVALID_PARAMETER_VALUE", "maxResults must be non-negative")
    page: dict[str, Any] = {"items": items[start : start + size]}
    if start + size < len(items):
        page["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return page


def _table_item(t: SharedTable, share: Share) -> dict[str, Any]:
    return {"name": t.name, "schema": t.schema, "share": t.share, "shareId": share.id, "id": t.id}


def _file_rows(delta: DeltaTable) -> list[dict[str, Any]]:
    return pa.table(delta.get_add_actions(flatten=False)).to_pylist()


def _ranges(header: str | None, size: int) -> tuple[int, int] | None:
    """The first byte range of a `Range: bytes=...` header, clipped; None = whole file
    (also for other units, which a server may ignore). Malformed: 400; no byte of the
    file in range: 416."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    start_text, dash, end_text = spec.split(",")[0].strip().partition("-")
    start_text, end_text = start_text.strip(), end_text.strip()
    digits = all(t.isdigit() and t.isascii() and len(t) < 20 for t in (start_text, end_text) if t)
    if not dash or not digits or not (start_text or end_text):
        raise SharingError(400, "MALFORMED_REQUEST", "malformed Range header")
    unsatisfiable = SharingError(
        416,
        "INVALID_PARAMETER_VALUE",
        "range not satisfiable",
        headers={"Content-Range": f"bytes */{size}"},
    )
    if not start_text:  # suffix: the last N bytes
        length = int(end_text)
        if length == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - length), size - 1
    start = int(start_text)
    end = min(int(end_text), size - 1) if end_text else size - 1
    if start >= size or start > end:
        raise unsatisfiable
    return start, end


def _query_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise SharingError(400, "MALFORMED_REQUEST", "the body is not JSON") from exc
    if not isinstance(body, dict):
        raise SharingError(400, "MALFORMED_REQUEST", "the body is not a JSON object")
    return body


def create_app(server: SharingServer | None = None) -> FastAPI:
    """The FastAPI application of a sharing server (by default over MESH_HOME)."""
    server = server or SharingServer()
    app = FastAPI(title="Meshwork Delta Sharing", version="1")
    app.state.sharing = server
    app.add_middleware(
        BodyLimit,
        max_bytes=server.limits.max_body_bytes,
        shape=lambda message: {"errorCode": "REQUEST_TOO_LARGE", "message": message},
    )
    access_log = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, QueryStringFilter) for f in access_log.filters):
        access_log.addFilter(QueryStringFilter())

    @app.exception_handler(SharingError)
    async def _sharing_error(_request: Request, exc: SharingError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.get(PREFIX + "/shares")
    def list_shares(request: Request) -> dict[str, Any]:
        recipient = server.authenticate(request)
        shares = [s for s in server.config.shares.values() if s.name in recipient.shares]
        server.listed(recipient, None, f"listed {len(shares)} share(s)")
        return _page([{"name": s.name, "id": s.id} for s in shares], request)

    @app.get(PREFIX + "/shares/{share}")
    def get_share(share: str, request: Request) -> dict[str, Any]:
        found = server.share_for(recipient := server.authenticate(request), share)
        server.listed(recipient, found, "read the share")
        return {"share": {"name": found.name, "id": found.id}}

    @app.get(PREFIX + "/shares/{share}/schemas")
    def list_schemas(share: str, request: Request) -> dict[str, Any]:
        found = server.share_for(recipient := server.authenticate(request), share)
        server.listed(recipient, found, "listed its schemas")
        return _page([{"name": s, "share": found.name} for s in found.schemas], request)

    @app.get(PREFIX + "/shares/{share}/schemas/{schema}/tables")
    def list_tables(share: str, schema: str, request: Request) -> dict[str, Any]:
        found = server.share_for(recipient := server.authenticate(request), share)
        tables = [t for t in found.tables if t.schema.lower() == schema.lower()]
        if not tables:
            message = f"schema {schema} not found"
            server.audit_resource(recipient, f"share:{found.name}", found.role, False, message)
            raise SharingError(404, "RESOURCE_DOES_NOT_EXIST", message)
        server.listed(recipient, found, f"listed the tables of schema {tables[0].schema}")
        return _page([_table_item(t, found) for t in tables], request)

    @app.get(PREFIX + "/shares/{share}/all-tables")
    def list_all_tables(share: str, request: Request) -> dict[str, Any]:
        found = server.share_for(recipient := server.authenticate(request), share)
        server.listed(recipient, found, "listed all its tables")
        return _page([_table_item(t, found) for t in found.tables], request)

    @app.api_route(
        PREFIX + "/shares/{share}/schemas/{schema}/tables/{table}/version",
        methods=["GET", "HEAD"],
    )
    def table_version(
        share: str, schema: str, table: str, request: Request, startingTimestamp: str | None = None
    ) -> Response:
        recipient = server.authenticate(request)
        shared = server.table_for(recipient, share, schema, table)
        with server.audited(recipient, shared):
            decision = server.authorize(recipient, shared)
            version = server.version_at(shared, startingTimestamp)
        server.audit(recipient, shared, _noted(decision, f"table version {version}"), None)
        return Response(status_code=200, headers={VERSION_HEADER: str(version)})

    @app.get(PREFIX + "/shares/{share}/schemas/{schema}/tables/{table}/metadata")
    def table_metadata(share: str, schema: str, table: str, request: Request) -> Response:
        recipient = server.authenticate(request)
        shared = server.table_for(recipient, share, schema, table)
        with server.audited(recipient, shared):
            decision = server.authorize(recipient, shared)
        delta_format = _capabilities(request)
        delta = server.delta_table(shared)
        files = pa.table(delta.get_add_actions(flatten=False))
        lines = [
            server.protocol_line(delta, delta_format),
            server.metadata_line(delta, shared, delta_format, files),
        ]
        server.audit(recipient, shared, _noted(decision, "metadata"), None)
        return _ndjson(lines, delta.version(), delta_format)

    @app.post(PREFIX + "/shares/{share}/schemas/{schema}/tables/{table}/query")
    async def query_table(share: str, schema: str, table: str, request: Request) -> Response:
        raw = await request.body()
        return await run_in_threadpool(_query, share, schema, table, request, raw)

    def _query(share: str, schema: str, table: str, request: Request, raw: bytes) -> Response:
        recipient = server.authenticate(request)
        shared = server.table_for(recipient, share, schema, table)
        with server.audited(recipient, shared):
            body = _query_body(raw)
            if body.get("startingVersion") is not None:
                raise SharingError(
                    400, "INVALID_PARAMETER_VALUE", "change data feed is not shared by this server"
                )
            travel = body.get("version") is not None or body.get("timestamp") is not None
            delta = server.delta_table(shared, body.get("version"), body.get("timestamp"))
            decision = server.authorize(recipient, shared, delta if travel else None)
        delta_format = _capabilities(request)
        rows = _file_rows(delta)
        hints = body.get("jsonPredicateHints")
        chosen = [r for r in rows if keep_file(hints, _partition_strings(r))]
        limit = body.get("limitHint")
        if isinstance(limit, int) and limit >= 0:
            chosen = _within_limit(chosen, limit)
        files = pa.table(delta.get_add_actions(flatten=False))
        lines = [
            server.protocol_line(delta, delta_format),
            server.metadata_line(delta, shared, delta_format, files),
            *server.file_lines(request, recipient, shared, chosen, delta_format, delta.version()),
        ]
        returned = sum(int(r.get("num_records") or 0) for r in chosen)
        note = f"query of version {delta.version()}: {len(chosen)} file URL(s)"
        server.audit(recipient, shared, _noted(decision, note), returned)
        return _ndjson(lines, delta.version(), delta_format)

    @app.api_route(PREFIX + "/files/{share}/{schema}/{table}/{path:path}", methods=["GET", "HEAD"])
    def download(share: str, schema: str, table: str, path: str, request: Request) -> Response:
        shared, grant = server.verify_file(request, share, schema, table, path)
        uri = f"{server.lake.uri(shared.shared_key)}/{path}"
        settings = server.settings
        with server.audited(grant.recipient, shared):
            decision = server.check_download(grant)
            info = settings.files.file_info(uri)
            if info.size is None or info.type.name != "File":
                raise SharingError(404, "RESOURCE_DOES_NOT_EXIST", "file not found")
            size = int(info.size)
            span = _ranges(request.headers.get("range"), size)
        start, end = span if span else (0, size - 1)
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Length": str(max(0, end - start + 1)),
            "Content-Type": "application/octet-stream",
        }
        status = 206 if span else 200
        if span:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        what = f"{request.method} file {path} of version {grant.version}, bytes {start}-{end}"
        server.audit(grant.recipient, shared, _noted(decision, what), None)
        if request.method == "HEAD":
            return Response(status_code=200, headers={**headers, "Content-Length": str(size)})
        return StreamingResponse(
            _read_range(settings, uri, start, end), status_code=status, headers=headers
        )

    return app


def _noted(decision: Decision, what: str) -> Decision:
    """The decision with what was served in its reason (the audit's reason column)."""
    return replace(decision, reason=f"{decision.reason}; {what}")


def _within_limit(rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Files until their records reach the limit (best effort; at least one file)."""
    chosen, total = [], 0
    for row in rows:
        if chosen and total >= limit:
            break
        chosen.append(row)
        total += int(row.get("num_records") or 0)
    return chosen


def _read_range(settings: MeshSettings, uri: str, start: int, end: int) -> Iterator[bytes]:
    with settings.files.fs.open_input_file(settings.files.path(uri)) as handle:
        handle.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
