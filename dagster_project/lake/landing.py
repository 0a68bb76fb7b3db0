"""Landing files → product rows, with quarantine for what cannot be trusted.

Files arrive in `MESH_HOME/landing/<domain>/<product>/`, named after the day they
carry (`2025-03-01.parquet`, `2025-03-01-late.csv`). A file that cannot be read, is
empty, has the wrong columns or types, or bad key values is moved to
`MESH_HOME/quarantine/<domain>/<product>/` beside a `.reason.json`; the others
keep flowing. Loading is idempotent: a product's rows for a day are rebuilt from
all of that day's files (partition overwrite) or merged on the primary key.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import polars as pl

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.storage import DateWindow, SchemaViolation, enforce_schema

READERS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "ndjson", ".ndjson": "ndjson"}
REASON_SUFFIX = ".reason.json"
_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})")


class LandingError(ValueError):
    """Why a landing file was rejected."""


@dataclass(frozen=True)
class LandingFile:
    uri: str
    day: date | None
    signature: str  # size and modification time: a changed file is a new arrival

    @property
    def name(self) -> str:
        return self.uri.rsplit("/", 1)[-1]


@dataclass
class LandingLoad:
    """What one load read: the good rows and the files set aside."""

    frame: pl.DataFrame
    loaded: list[LandingFile] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)  # file → reason


def file_day(name: str) -> date | None:
    match = _DAY.match(name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def _split(product: Contract | str) -> tuple[str, str]:
    """(domain, product) of a contract or a `domain/product` key."""
    key = product.key if isinstance(product, Contract) else product
    domain, name = key.split("/")
    return domain, name


def landing_files(
    settings: MeshSettings, product: Contract | str, window: DateWindow | None = None
) -> list[LandingFile]:
    """The product's landing files (optionally only the days in `window`), oldest first."""
    folder = settings.landing_uri(*_split(product))
    files = []
    for info in settings.files.list_infos(folder):  # names, sizes and mtimes in one listing
        name = info.base_name
        if name.startswith((".", "_")) or name.endswith(REASON_SUFFIX):
            continue
        day = file_day(name)
        if window and (day is None or not window.start <= day <= window.end):
            continue
        mtime = info.mtime.timestamp() if info.mtime else 0
        files.append(LandingFile(f"{folder}/{name}", day, f"{info.size}:{mtime:.6f}"))
    return sorted(files, key=lambda f: (f.day or date.min, f.name))


def read_landing_file(
    settings: MeshSettings, file: LandingFile, contract: Contract
) -> pl.DataFrame:
    """Read and validate one file against the contract; LandingError says what is wrong."""
    suffix = "." + file.name.rsplit(".", 1)[-1].lower() if "." in file.name else ""
    if suffix not in READERS:
        raise LandingError(
            f"unsupported file type {suffix or '(none)'}; expected one of {', '.join(READERS)}"
        )
    try:
        raw = settings.files.read_bytes(file.uri)
        frame = None if not raw or raw.isspace() else _parse(raw, READERS[suffix], contract)
    except Exception as exc:  # any parser error means the file is unreadable as such
        first_line = str(exc).strip().splitlines()[0]  # not the parser's advice that follows
        raise LandingError(f"unreadable {READERS[suffix]} file: {first_line}") from exc
    if frame is None:
        raise LandingError("the file is empty")
    if frame.is_empty():
        raise LandingError("the file has no rows")
    unknown = [c for c in frame.columns if c not in contract.column_names]
    if unknown:
        raise LandingError(f"columns not in the contract: {', '.join(unknown)}")
    try:
        frame = enforce_schema(frame, contract)
    except SchemaViolation as exc:
        raise LandingError(str(exc)) from exc
    _check_keys(frame, contract, file)
    return frame


def _parse(raw: bytes, kind: str, contract: Contract) -> pl.DataFrame:
    if kind == "parquet":
        return pl.read_parquet(io.BytesIO(raw))
    if kind == "ndjson":
        # JSON carries its types; enforce_schema casts to the contract's and parses dates.
        # (Typed parsing would reject a file that leaves out an optional column.)
        return pl.read_ndjson(io.BytesIO(raw), infer_schema_length=None)
    # CSV: read the header first so types are imposed only on the columns present.
    header = pl.read_csv(io.BytesIO(raw), n_rows=0).columns
    types = {c: contract.polars_schema[c] for c in header if c in contract.column_names}
    return pl.read_csv(io.BytesIO(raw), schema_overrides=types)


def _check_keys(frame: pl.DataFrame, contract: Contract, file: LandingFile) -> None:
    keys = contract.primary_key
    if keys:
        nulls = frame.select(pl.any_horizontal(pl.col(keys).is_null()).sum()).item()
        if nulls:
            raise LandingError(f"{nulls:,} row(s) with an empty primary key ({', '.join(keys)})")
    part = contract.partition_column
    if part and file.day is not None:
        outside = frame.filter(pl.col(part) != file.day).height
        if outside:
            raise LandingError(
                f"{outside:,} row(s) with {part} other than the file's day {file.day.isoformat()}"
            )


def quarantine(settings: MeshSettings, contract: Contract, file: LandingFile, reason: str) -> str:
    """Move a rejected file aside with a reason file; returns where it went."""
    folder = settings.quarantine_uri(contract.domain) + f"/{contract.product}"
    target = f"{folder}/{file.name}"
    if settings.files.exists(target):  # keep earlier rejects: never lose a file
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = f"{folder}/{stamp}-{file.name}"
    settings.files.move(file.uri, target)
    settings.files.write_text(
        target + REASON_SUFFIX,
        json.dumps(
            {
                "file": file.name,
                "product": contract.key,
                "reason": reason,
                "quarantined_at": datetime.now(UTC).isoformat(),
                "original_uri": file.uri,
            },
            indent=2,
        ),
    )
    return target


def _loaded_uri(settings: MeshSettings, product: Contract | str, name: str) -> str:
    return settings.registry_uri("loaded", *_split(product), name + ".json")


def record_loaded(
    settings: MeshSettings, product: Contract | str, files: list[LandingFile]
) -> None:
    """Remember which version of each file is in the product (one small file each, so
    concurrent runs for different days never overwrite each other's record)."""
    for file in files:
        settings.files.write_text(
            _loaded_uri(settings, product, file.name),
            json.dumps({"uri": file.uri, "signature": file.signature}),
        )


def already_loaded(settings: MeshSettings, product: Contract | str, file: LandingFile) -> bool:
    uri = _loaded_uri(settings, product, file.name)
    record = json.loads(settings.files.read_text_or(uri, "{}"))
    return record.get("signature") == file.signature


def first_landed_day(settings: MeshSettings, product: Contract | str) -> date | None:
    """The earliest day the product has data for, from the names of its landing files and
    of the files already loaded (landing may have been archived since)."""
    loaded = settings.registry_uri("loaded", *_split(product))
    names = [f.name for f in landing_files(settings, product)]
    names += [info.base_name for info in settings.files.list_infos(loaded)]
    days = [d for d in map(file_day, names) if d is not None]
    return min(days, default=None)


def pending_files(settings: MeshSettings, product: str, up_to: date | None) -> list[LandingFile]:
    """Landed files of a product (`domain/product`) that are not loaded yet, up to a day
    (None: any day). Products referencing it wait for them: a foreign key whose target
    row is still in landing would fail referential integrity."""
    return [
        f
        for f in landing_files(settings, product)
        if (up_to is None or f.day is None or f.day <= up_to)
        and not already_loaded(settings, product, f)
    ]


def load_landing(
    settings: MeshSettings, contract: Contract, window: DateWindow | None = None
) -> LandingLoad:
    """All good rows of the product's landing files (in `window`), quarantining bad files."""
    frames, load = [], LandingLoad(pl.DataFrame(schema=contract.polars_schema))
    for file in landing_files(settings, contract, window):
        try:
            frames.append(read_landing_file(settings, file, contract))
            load.loaded.append(file)
        except LandingError as exc:
            quarantine(settings, contract, file, str(exc))
            load.quarantined[file.name] = str(exc)
    if frames:
        load.frame = pl.concat(frames, how="vertical", rechunk=False)
    return load
