"""Which rows each landing file brought, so that a file's rows can be replaced or taken back.

Beside each file's load record (`registry/loaded/…`, lake.landing: signature, content hash,
when), the load log keeps the keys the file brought at its last load, one small Parquet
file each: `registry/lineage/<domain>/<product>/<file>.keys.parquet` (`lineage_columns`:
the primary key, and the day of a partitioned product). The product's schema is not
touched: readers never see a lineage column.

- A corrected file (same name, new bytes) replaces exactly its rows: a partitioned product
  rebuilds the file's day from the day's files; a merged one also deletes, in the merge's
  own commit, the keys the file brought before and no longer carries (`retracted_keys`).
- `retract` takes a file's rows back (a Delta delete by key; a key another landed file
  also brings gets that file's row back), moves the file to `MESH_HOME/retracted/…` and
  writes an audit entry (`registry/audit/landing/…`: who, when, why, how many rows).
- `quarantined` lists the files set aside with their reasons; `release` moves one back
  into landing, where the sensor or the next run judges it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

import polars as pl

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.landing import (
    REASON_SUFFIX,
    LandingError,
    LandingFile,
    LandingLoad,
    file_day,
    forget_loaded,
    landing_files,
    load_record,
    read_landing_file,
    record_loaded,
)
from dagster_project.lake.storage import DateWindow, Lake, lineage_columns

KEYS_SUFFIX = ".keys.parquet"


class LineageError(ValueError):
    """A mistake in what was asked (an unknown file, a product without a key): the
    message says what to do instead."""


# -- the load log ------------------------------------------------------------------------------
def _keys_uri(settings: MeshSettings, contract: Contract, name: str) -> str:
    return settings.registry_uri("lineage", contract.domain, contract.product, name + KEYS_SUFFIX)


def logged_keys(settings: MeshSettings, contract: Contract, name: str) -> pl.DataFrame | None:
    """The keys the file of this name brought at its last load (None: not in the log)."""
    uri = _keys_uri(settings, contract, name)
    if not settings.files.exists(uri):
        return None
    return settings.files.read_parquet(uri)


def file_keys(settings: MeshSettings, contract: Contract, file: LandingFile) -> pl.DataFrame:
    """The keys a landed file brought: from the log, else (loaded before the log existed, or
    recorded as a replay) read from the file itself; none when it was never loaded."""
    logged = logged_keys(settings, contract, file.name)
    if logged is not None:
        return logged
    empty = pl.DataFrame(schema={c: contract.polars_schema[c] for c in lineage_columns(contract)})
    if not load_record(settings, contract, file.name) or not settings.files.exists(file.uri):
        return empty
    try:
        return read_landing_file(settings, file, contract).select(empty.columns).unique()
    except LandingError:
        return empty


def _changed_since_loaded(settings: MeshSettings, contract: Contract, file: LandingFile) -> bool:
    return load_record(settings, contract, file.name).get("signature") != file.signature


def _unlogged(settings: MeshSettings, contract: Contract, file: LandingFile) -> bool:
    """New or changed since its last load, or loaded before the log existed (a record
    without a content hash)."""
    record = load_record(settings, contract, file.name)
    return record.get("signature") != file.signature or not record.get("sha256")


def record_load(settings: MeshSettings, contract: Contract, load: LandingLoad) -> None:
    """After a publish: log the keys of each file not logged in this version, then write
    the load records."""
    columns = lineage_columns(contract)
    offsets, offset = {}, 0
    for file in load.loaded:  # `frame` holds the files' rows one file after the other
        offsets[file.name] = (offset, load.rows[file.name])
        offset += load.rows[file.name]

    def keys_of(file: LandingFile) -> pl.DataFrame:
        return load.frame.slice(*offsets[file.name]).select(columns).unique()

    log_load(settings, contract, load.loaded, keys_of)


def log_load(
    settings: MeshSettings,
    contract: Contract,
    files: list[LandingFile],
    keys_of: Callable[[LandingFile], pl.DataFrame],
) -> None:
    """Log `keys_of(file)` for each file not logged in this version, then write the load
    records (keys first, so a record never vouches for keys not logged)."""
    if lineage_columns(contract):
        for file in files:
            if _unlogged(settings, contract, file):
                uri = _keys_uri(settings, contract, file.name)
                settings.files.write_parquet(uri, keys_of(file))
    record_loaded(settings, contract, files)


def retracted_keys(
    settings: MeshSettings, contract: Contract, load: LandingLoad
) -> pl.DataFrame | None:
    """Keys that the corrected files of a merged product's load brought before and that no
    landed file carries now (None: nothing to delete). A partitioned product needs none:
    the file's day is rebuilt from the day's files."""
    if contract.write_mode != "merge" or not contract.primary_key:
        return None
    return keys_gone(settings, contract, load.loaded, load.frame.select(lineage_columns(contract)))


def keys_gone(
    settings: MeshSettings, contract: Contract, files: list[LandingFile], current: pl.DataFrame
) -> pl.DataFrame | None:
    """Keys the changed ones of `files` brought at their last load that are not among the
    `current` keys of the load (None: none)."""
    before = [
        keys
        for file in files
        if _changed_since_loaded(settings, contract, file)
        and (keys := logged_keys(settings, contract, file.name)) is not None
    ]
    if not before:
        return None
    columns = lineage_columns(contract)
    gone = pl.concat(before).unique().join(current.select(columns), on=columns, how="anti")
    return None if gone.is_empty() else gone


# -- finding a file ----------------------------------------------------------------------------
def _parts(text: str) -> tuple[str | None, str]:
    """(`domain/product` or None, file name) of what a user typed: a name, a path ending
    in `<domain>/<product>/<name>` (e.g. `.mesh/landing/sales/stores/2025-03-01.csv`)."""
    parts = [p for p in text.replace("\\", "/").split("/") if p]
    if not parts:
        raise LineageError("name a file: FILE or DOMAIN/PRODUCT/FILE")
    product = "/".join(parts[-3:-1]) if len(parts) >= 3 else None
    return product, parts[-1]


def find_landing_file(
    settings: MeshSettings, contracts: list[Contract], text: str
) -> tuple[Contract, LandingFile]:
    """The product and landing file a user named: one in landing, else one gone from it
    (deleted by hand, or quarantined after a correction) whose load is still logged.
    LineageError says what to type instead."""
    product, name = _parts(text)
    known = {c.key: c for c in contracts}
    candidates = [known[product]] if product in known else list(known.values())
    found = [(c, f) for c in candidates for f in landing_files(settings, c) if f.name == name]
    if not found:
        found = [(c, f) for c in candidates if (f := _logged_file(settings, c, name))]
    if len(found) == 1:
        return found[0]
    if found:
        keys = ", ".join(c.key for c, _ in found)
        raise LineageError(
            f"{name} is landed for several products ({keys}): name it as DOMAIN/PRODUCT/{name}"
        )
    hint = (
        "it is quarantined (see `mesh landing list`)"
        if any(q.original == name for q in quarantined(settings))
        else f"landed files are in {settings.uri('landing')}/DOMAIN/PRODUCT/"
    )
    raise LineageError(f"no landing file {text}: {hint}")


def _logged_file(settings: MeshSettings, contract: Contract, name: str) -> LandingFile | None:
    """A file no longer in landing, as its load record remembers it (None: never loaded)."""
    record = load_record(settings, contract, name)
    if not record:
        return None
    uri = f"{settings.landing_uri(contract.domain, contract.product)}/{name}"
    return LandingFile(record.get("uri", uri), file_day(name), record.get("signature", ""))


# -- retraction --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Retraction:
    """What retracting a file did (or, on a dry run, would do)."""

    product: str
    file: str
    rows_removed: int  # rows deleted from the product
    rows_restored: int  # keys another landed file also brings: its row is put back
    kept_by: list[str]  # those files
    dry_run: bool
    reason: str
    principal: str
    at: str
    moved_to: str | None = None
    delta_version: int | None = None
    audit_uri: str | None = None


def retract(
    lake: Lake,
    contract: Contract,
    file: LandingFile,
    *,
    reason: str,
    principal: str,
    dry_run: bool = False,
) -> Retraction:
    """Take back the rows a landing file brought to its product, move the file out of
    landing and audit it; `dry_run` only says what would happen."""
    if not contract.primary_key:
        raise LineageError(
            f"{contract.key} has no primary key, so its rows cannot be told apart by file; "
            "give its contract a primaryKey to retract files"
        )
    settings = lake.settings
    columns = lineage_columns(contract)
    mine = file_keys(settings, contract, file)
    shared, kept_by, restore = _also_brought(settings, contract, file, mine)
    gone = mine.join(shared, on=columns, how="anti")
    present = 0
    if lake.exists(contract.key) and not gone.is_empty():
        table = lake.scan(contract.key).select(columns)
        present = table.join(gone.lazy(), on=columns, how="semi").select(pl.len()).collect().item()
    now = datetime.now(UTC).isoformat(timespec="seconds")
    plan = Retraction(
        contract.key, file.name, present, restore.height, kept_by, dry_run, reason, principal, now
    )
    return plan if dry_run else _carry_out(lake, contract, file, plan, gone, restore)


def _carry_out(
    lake: Lake,
    contract: Contract,
    file: LandingFile,
    plan: Retraction,
    gone: pl.DataFrame,
    restore: pl.DataFrame,
) -> Retraction:
    """The table first, then the file and its log: a crash in between leaves the file in
    landing, whose next run brings its rows back, and the retraction can be run again."""
    settings, done = lake.settings, plan
    if lake.exists(contract.key) and (plan.rows_removed or plan.rows_restored):
        commit = {"mesh.retracted_file": file.name, "mesh.principal": plan.principal}
        result = lake.retract(contract, gone, restore, commit_metadata=commit)
        done = replace(done, rows_removed=result.rows_retracted, delta_version=result.version)
    if settings.files.exists(file.uri):  # a file deleted by hand is retracted from its log
        folder = settings.uri("retracted", contract.domain, contract.product)
        done = replace(done, moved_to=_move_out(settings, file, folder))
    settings.files.delete(_keys_uri(settings, contract, file.name))
    forget_loaded(settings, contract, file.name)
    return replace(done, audit_uri=audit(settings, "retract", asdict(done)))


def _also_brought(
    settings: MeshSettings, contract: Contract, file: LandingFile, mine: pl.DataFrame
) -> tuple[pl.DataFrame, list[str], pl.DataFrame]:
    """Of `mine`, the keys other landed files (of the same day, when partitioned) also
    bring; those files; and their rows for those keys (the last file wins, as in a load)."""
    columns = lineage_columns(contract)
    day = file.day if contract.partition_column else None
    window = DateWindow(day, day) if day else None
    others = [f for f in landing_files(settings, contract, window) if f.name != file.name]
    shared_parts, kept_by, rows = [], [], []
    for other in others:
        common = mine.join(file_keys(settings, contract, other), on=columns, how="semi")
        if common.is_empty():
            continue
        try:  # an unreadable file keeps nothing: the next run quarantines it
            rows.append(read_landing_file(settings, other, contract))
        except LandingError:
            continue
        shared_parts.append(common)
        kept_by.append(other.name)
    if not kept_by:
        return mine.clear(), [], pl.DataFrame(schema=contract.polars_schema)
    shared = pl.concat(shared_parts).unique()
    # The last file wins, as in a load; then only the shared keys' rows.
    latest = pl.concat(rows).unique(subset=contract.primary_key, keep="last", maintain_order=True)
    restore = latest.join(shared, on=columns, how="semi")
    return shared, kept_by, restore


def _move_out(settings: MeshSettings, file: LandingFile, folder: str) -> str:
    """Move a file into `folder`, never over an earlier one; returns where it went."""
    target = f"{folder}/{file.name}"
    if settings.files.exists(target):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = f"{folder}/{stamp}-{file.name}"
    settings.files.move(file.uri, target)
    return target


def audit(settings: MeshSettings, action: str, entry: dict) -> str:
    """Write one audit entry (a file each: object stores cannot append); returns its URI."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"{stamp}-{action}-{entry['product'].replace('/', '.')}-{entry['file']}.json"
    uri = settings.registry_uri("audit", "landing", name)
    settings.files.write_text(uri, json.dumps({"action": action, **entry}, indent=2, default=str))
    return uri


def audit_entries(settings: MeshSettings) -> list[dict]:
    """Every landing audit entry, oldest first."""
    folder = settings.registry_uri("audit", "landing")
    return [json.loads(settings.files.read_text(u)) for u in settings.files.list_files(folder)]


# -- quarantine --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Quarantined:
    """A file set aside, with why."""

    product: str
    name: str  # its name in quarantine (an earlier reject of the same name keeps its own)
    original: str  # its name in landing
    reason: str
    quarantined_at: str
    uri: str
    details: dict = field(default_factory=dict)


def quarantined(settings: MeshSettings, product: str | None = None) -> list[Quarantined]:
    """The quarantined files of every product (or one `domain/product`), oldest first."""
    root, files = settings.uri("quarantine"), settings.files
    found = []
    for domain in files.list_dirs(root):
        for name in files.list_dirs(f"{root}/{domain}"):
            key = f"{domain}/{name}"
            if product not in (None, key):
                continue
            for uri in files.list_files(f"{root}/{domain}/{name}"):
                if not uri.endswith(REASON_SUFFIX):
                    found.append(_quarantined(settings, key, uri))
    return sorted(found, key=lambda q: (q.quarantined_at, q.product, q.name))


def _quarantined(settings: MeshSettings, product: str, uri: str) -> Quarantined:
    reason = json.loads(settings.files.read_text_or(uri + REASON_SUFFIX, "{}"))
    name = uri.rsplit("/", 1)[-1]
    return Quarantined(
        product,
        name,
        reason.get("file", name),
        reason.get("reason", "(no reason recorded)"),
        reason.get("quarantined_at", ""),
        uri,
        {k: v for k, v in reason.items() if k not in {"file", "reason", "quarantined_at"}},
    )


def find_quarantined(settings: MeshSettings, text: str) -> Quarantined:
    """The quarantined file a user named (its name there or in landing)."""
    product, name = _parts(text)
    found = [
        q
        for q in quarantined(settings, product)
        if name in (q.name, q.original) and (product is None or q.product == product)
    ]
    exact = [q for q in found if q.name == name]
    if len(exact) == 1 or len(found) == 1:
        return (exact or found)[0]
    if found:
        names = ", ".join(f"{q.product}/{q.name}" for q in found)
        raise LineageError(f"several quarantined files match {text}: name one of {names}")
    raise LineageError(f"no quarantined file {text}: `mesh landing list` shows them")


def release(settings: MeshSettings, item: Quarantined, *, principal: str) -> str:
    """Move a quarantined file back into landing under its landing name (it is judged
    again on the next sensor tick or run) and audit it; returns its landing URI."""
    domain, product = item.product.split("/")
    target = f"{settings.landing_uri(domain, product)}/{item.original}"
    if settings.files.exists(target):
        raise LineageError(
            f"{item.original} is in landing for {item.product} already: retract it "
            f"(`mesh landing retract {item.product}/{item.original}`) or remove it first"
        )
    settings.files.move(item.uri, target)
    settings.files.delete(item.uri + REASON_SUFFIX)
    entry = {
        "product": item.product,
        "file": item.original,
        "reason": item.reason,
        "principal": principal,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "moved_to": target,
    }
    audit(settings, "release", entry)
    return target
