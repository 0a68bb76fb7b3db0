"""Landing files → product rows, with quarantine for what cannot be trusted.

Files arrive in `MESH_HOME/landing/<domain>/<product>/`, named after the day they carry
anywhere in their name (`2025-03-01.parquet`, `2025-03-01-late.csv`,
`readings_20250301.csv`). A file that cannot be read, is empty, has the wrong columns or
types, or bad key values is moved to `MESH_HOME/quarantine/<domain>/<product>/` beside a
`.reason.json`; the others keep flowing. So is a file with rows breaking a blocking
contract rule (the product's `screen`), or only those rows when the contract says
`onViolation: quarantine_rows`. A file is judged only once complete (`unsettled`).
Loading is idempotent: a product's rows for a day are rebuilt from all of that day's
files (partition overwrite) or merged on the primary key, and the same bytes under any
name are loaded once (the load record keeps their SHA-256; which rows each file brought
is lake.lineage's).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.screening import Screen, Violation, split_rows, summary
from dagster_project.lake.storage import DateWindow, SchemaViolation, day_of, enforce_schema

READERS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "ndjson", ".ndjson": "ndjson"}
REASON_SUFFIX = ".reason.json"
DONE_SUFFIX = ".done"  # `<file>.done`: the file is complete (MESH_LANDING_STABLE=marker)
SUCCESS_MARKER = "_SUCCESS"  # every file older than it is complete (marker mode)
ROWS_SUFFIX = ".rows.parquet"  # a file's rows set aside by `quarantine_rows`
# A day anywhere in a file's name: 2025-03-01, 2025_03_01 or 20250301, not inside a number.
_DAY = re.compile(r"(?<!\d)(\d{4})([-_]?)(\d{2})\2(\d{2})(?!\d)")


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

    @property
    def modified(self) -> float:
        """Modification time (POSIX seconds), from the signature."""
        return float(self.signature.rsplit(":", 1)[-1])


@dataclass
class LandingLoad:
    """What one load read: the good rows, the files set aside, the files whose breaking
    rows were set aside, and the files left for later (maybe still being written)."""

    frame: pl.DataFrame
    loaded: list[LandingFile] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)  # file → reason
    rows: dict[str, int] = field(default_factory=dict)  # file → its rows, in `frame` order
    rows_quarantined: dict[str, str] = field(default_factory=dict)  # file → reason
    unsettled: dict[str, str] = field(default_factory=dict)  # file → why it waits
    replays: dict[str, str] = field(default_factory=dict)  # file → the file it repeats, why

    def refusal(self, contract: Contract, *, table_exists: bool) -> str | None:
        """Why nothing may be written (None: write the frame). A rewrite of days or of the
        table without a file still being written would drop that file's rows."""
        rewrites = contract.write_mode in {"partition_overwrite", "overwrite"}
        if self.unsettled and (rewrites or not self.loaded):
            why = f"{len(self.unsettled)} file(s) may still be being written"
        elif not self.loaded and not table_exists and self.quarantined:
            return f"{contract.key}: nothing written, {self._quarantine_summary()}"
        elif not self.loaded and not table_exists:
            why = "no landing file is loadable"
        else:
            return None
        return f"{contract.key}: nothing written, {why}; run again once complete"

    def _quarantine_summary(self) -> str:
        """How many files were set aside and the first reason: the fix is in it, not in
        waiting (`mesh landing list` shows every reason, `mesh landing release` retries)."""
        name, reason = next(iter(self.quarantined.items()))
        others = len(self.quarantined) - 1
        more = f" (and {others} more file(s))" if others else ""
        return (
            f"every landing file was quarantined: {name}: {reason}{more}; "
            "see `mesh landing list`, fix the files or the contract, then `mesh landing release`"
        )

    def replaced_days(self, contract: Contract, window: DateWindow | None) -> frozenset | None:
        """The days of `window` a partition overwrite replaces: those with a good file
        (None: the whole window). A day whose files were all quarantined keeps its rows:
        rewriting it empty would drop the good version of that day."""
        if contract.write_mode != "partition_overwrite" or window is None:
            return None
        return frozenset(f.day for f in self.loaded if f.day is not None)


def file_day(name: str) -> date | None:
    """The day a file's name carries (`2025-03-01.csv`, `flights_20250301.csv`); None
    without one, or with two different days (which one would it be?)."""
    days = set()
    for year, _, month, day in _DAY.findall(name):
        try:
            days.add(date(int(year), int(month), int(day)))
        except ValueError:  # 12345678 is a number, not a day
            continue
    return days.pop() if len(days) == 1 else None


def _split(product: Contract | str) -> tuple[str, str]:
    """(domain, product) of a contract or a `domain/product` key."""
    key = product.key if isinstance(product, Contract) else product
    domain, name = key.split("/")
    return domain, name


def landing_files(
    settings: MeshSettings, product: Contract | str, window: DateWindow | None = None
) -> list[LandingFile]:
    """The product's landing files (optionally only the days in `window`), oldest first:
    by day, then name."""
    folder = settings.landing_uri(*_split(product))
    files = []
    for info in settings.files.list_infos(folder):  # names, sizes and mtimes in one listing
        name = info.base_name
        if name.startswith((".", "_")) or name.endswith((REASON_SUFFIX, DONE_SUFFIX)):
            continue
        day = file_day(name)
        if window and (day is None or not window.start <= day <= window.end):
            continue
        mtime = info.mtime.timestamp() if info.mtime else 0
        files.append(LandingFile(f"{folder}/{name}", day, f"{info.size}:{mtime:.6f}"))
    # By name without its suffix: `2025-03-01-late.csv` follows `2025-03-01.csv` (on a
    # key both carry, the later file wins), though "-" sorts before ".".
    return sorted(files, key=lambda f: (f.day or date.min, f.name.rsplit(".", 1)[0], f.name))


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
        _remember_hash(file, raw)
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
    separator = _separator(raw)
    header = pl.read_csv(io.BytesIO(raw), n_rows=0, separator=separator).columns
    _check_last_row(raw, len(header), separator)
    types = {c: contract.polars_schema[c] for c in header if c in contract.column_names}
    # R writes a missing value as NA: no number, day or flag is spelled so; text keeps it
    missing = {c: "NA" for c, dtype in types.items() if dtype != pl.String}
    return pl.read_csv(
        io.BytesIO(raw), schema_overrides=types, separator=separator, null_values=missing
    )


SEPARATORS = (",", ";", "\t", "|")


def _separator(raw: bytes) -> str:
    """The header's separator: a comma, else the one of `;`, tab, `|` it holds most of
    (spreadsheets in many locales export with semicolons)."""
    header = raw.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    if "," in header:
        return ","
    return max(SEPARATORS, key=header.count) if any(s in header for s in SEPARATORS) else ","


def _check_last_row(raw: bytes, fields: int, separator: str = ",") -> None:
    """A CSV file cut while written ends in a short row, which a parser fills with nulls
    (only a file not ending in a newline can have been cut inside a row)."""
    lines = raw.splitlines()
    if raw.endswith(b"\n") or len(lines) < 2:
        return
    last = next(csv.reader([lines[-1].decode("utf-8", errors="replace")], delimiter=separator), [])
    if len(last) < fields:
        raise LandingError(
            f"the last row has {len(last)} of {fields} fields: the file looks cut short"
        )


def _check_keys(frame: pl.DataFrame, contract: Contract, file: LandingFile) -> None:
    keys = contract.primary_key
    if keys:
        nulls = frame.select(pl.any_horizontal(pl.col(keys).is_null()).sum()).item()
        if nulls:
            raise LandingError(f"{nulls:,} row(s) with an empty primary key ({', '.join(keys)})")
    part = contract.partition_column
    if part and file.day is not None:
        outside = frame.filter(day_of(part) != file.day).height
        if outside:
            raise LandingError(
                f"{outside:,} row(s) with {part} other than the file's day {file.day.isoformat()}"
            )


def quarantine(
    settings: MeshSettings,
    contract: Contract,
    file: LandingFile,
    reason: str,
    violations: Sequence[Violation] = (),
) -> str:
    """Move a rejected file aside with a reason file (each broken rule with its failing
    rows and sample keys, when rules were broken); returns where it went."""
    target = _free_target(settings, contract, file.name)
    settings.files.move(file.uri, target)
    _write_reason(settings, contract, file, target, reason, violations)
    return target


def quarantine_rows(
    settings: MeshSettings,
    contract: Contract,
    file: LandingFile,
    rows: pl.DataFrame,
    violations: list[Violation],
) -> str:
    """Write a file's rows that break blocking rules to the quarantine, as
    `<file>.rows.parquet` beside its reason; the file itself stays and loads its other
    rows. Screening the same version of the file again writes nothing new."""
    name = file.name + ROWS_SUFFIX
    for uri in settings.files.list_files(_quarantine_folder(settings, contract)):
        if uri.endswith(name + REASON_SUFFIX):  # this file's, maybe stamped as a later copy
            earlier = json.loads(settings.files.read_text(uri))
            if earlier.get("signature") == file.signature:
                return uri.removesuffix(REASON_SUFFIX)
    target = _free_target(settings, contract, name)
    settings.files.write_parquet(target, rows)
    reason = f"{rows.height:,} row(s) break blocking contract rules: {summary(violations)}"
    _write_reason(settings, contract, file, target, reason, violations, rows=rows.height)
    return target


def _quarantine_folder(settings: MeshSettings, contract: Contract) -> str:
    return settings.quarantine_uri(contract.domain) + f"/{contract.product}"


def _free_target(settings: MeshSettings, contract: Contract, name: str) -> str:
    folder = _quarantine_folder(settings, contract)
    target = f"{folder}/{name}"
    if settings.files.exists(target):  # keep earlier rejects: never lose a file
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = f"{folder}/{stamp}-{name}"
    return target


def _write_reason(
    settings: MeshSettings,
    contract: Contract,
    file: LandingFile,
    target: str,
    reason: str,
    violations: Sequence[Violation] = (),
    rows: int | None = None,
) -> None:
    record: dict[str, Any] = {
        "file": file.name,
        "product": contract.key,
        "reason": reason,
        "quarantined_at": datetime.now(UTC).isoformat(),
        "original_uri": file.uri,
        "signature": file.signature,
    }
    if violations:
        record["violations"] = [v.as_dict() for v in violations]
    if rows is not None:
        record["quarantined_rows"] = rows
    settings.files.write_text(target + REASON_SUFFIX, json.dumps(record, indent=2, default=str))


def _loaded_uri(settings: MeshSettings, product: Contract | str, name: str) -> str:
    return settings.registry_uri("loaded", *_split(product), name + ".json")


def _hash_uri(settings: MeshSettings, product: Contract | str, digest: str) -> str:
    # "_" never starts a landing file's name: no record can clash with this folder.
    return settings.registry_uri("loaded", *_split(product), "_sha256", digest + ".json")


# Content hashes of files read in this process, by uri and signature: the load record
# needs the hash of a file the load just read, so the file is not read a second time.
_HASHES: dict[tuple[str, str], str] = {}
_HASHES_KEPT = 4096


def _remember_hash(file: LandingFile, raw: bytes) -> str:
    if len(_HASHES) >= _HASHES_KEPT:
        _HASHES.clear()
    digest = _HASHES[(file.uri, file.signature)] = hashlib.sha256(raw).hexdigest()
    return digest


def content_hash(settings: MeshSettings, file: LandingFile) -> str:
    known = _HASHES.get((file.uri, file.signature))
    return known or _remember_hash(file, settings.files.read_bytes(file.uri))


def load_record(settings: MeshSettings, product: Contract | str, name: str) -> dict:
    """The load record of a landing file name ({} when never loaded): its signature,
    content hash (`sha256`) and when it was loaded."""
    return json.loads(settings.files.read_text_or(_loaded_uri(settings, product, name), "{}"))


def forget_loaded(settings: MeshSettings, product: Contract | str, name: str) -> None:
    """Drop a file's load record (it was retracted): the same bytes landed again load again."""
    settings.files.delete(_loaded_uri(settings, product, name))


def _write_record(
    settings: MeshSettings, product: Contract | str, file: LandingFile, digest: str, **extra: str
) -> None:
    record = {
        "uri": file.uri,
        "signature": file.signature,
        "sha256": digest,
        "loaded_at": datetime.now(UTC).isoformat(),
        **extra,
    }
    settings.files.write_text(_loaded_uri(settings, product, file.name), json.dumps(record))
    if "replay_of" not in extra:  # the bytes stay the original's, whatever repeats them
        uri = _hash_uri(settings, product, digest)
        settings.files.write_text(uri, json.dumps({"file": file.name}))


def record_loaded(
    settings: MeshSettings, product: Contract | str, files: list[LandingFile]
) -> None:
    """Remember which version of each file is in the product (one small file each, so
    concurrent runs for different days never overwrite each other's record); a file
    unchanged since its record is neither hashed nor written again."""
    for file in files:
        record = load_record(settings, product, file.name)
        if record.get("signature") != file.signature or not record.get("sha256"):
            _write_record(settings, product, file, content_hash(settings, file))


def already_loaded(settings: MeshSettings, product: Contract | str, file: LandingFile) -> bool:
    """Whether the product already holds this file's content: this version of it (size
    and mtime), or the same bytes under this name or, for a name never loaded, another
    (a replay: recorded as loaded, so it changes nothing and is looked at once)."""
    record = load_record(settings, product, file.name)
    if record.get("signature") == file.signature:
        return True
    digest = content_hash(settings, file)
    if record:  # this name was loaded: the same bytes again, or a correction
        original = file.name if record.get("sha256") == digest else None
    else:
        original = _loaded_with(settings, product, digest)
    if original is not None:
        extra = {"replay_of": original} if original != file.name else {}
        _write_record(settings, product, file, digest, **extra)
    return original is not None


def _loaded_with(settings: MeshSettings, product: Contract | str, digest: str) -> str | None:
    """The loaded file whose current content has this hash, if any."""
    entry = json.loads(settings.files.read_text_or(_hash_uri(settings, product, digest), "{}"))
    name = entry.get("file")
    if name and load_record(settings, product, name).get("sha256") == digest:
        return name
    return None


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


def unsettled(
    settings: MeshSettings,
    product: Contract | str,
    files: list[LandingFile],
    now: float | None = None,
) -> dict[str, str]:
    """Files not to judge yet, as they may still be being written (name → why).

    `MESH_LANDING_STABLE=ticks` (default): files modified less than
    `MESH_LANDING_MIN_AGE_SECONDS` ago (the sensor also waits for a second tick with the
    same size and mtime). `marker`: files without a marker at least as new as they are,
    `<file>.done` or a `_SUCCESS` in the folder (a file rewritten after it was marked
    waits for a new marker)."""
    if settings.landing_stable == "marker":
        infos = settings.files.list_infos(settings.landing_uri(*_split(product)))
        marked = {i.base_name: i.mtime.timestamp() for i in infos if i.mtime}
        success = marked.get(SUCCESS_MARKER, float("-inf"))
        return {
            f.name: f"no {f.name}{DONE_SUFFIX} or {SUCCESS_MARKER} marker newer than it yet"
            for f in files
            # 1 µs: the signature's mtime is rounded to microseconds
            if max(marked.get(f.name + DONE_SUFFIX, float("-inf")), success) < f.modified - 1e-6
        }
    now = datetime.now(UTC).timestamp() if now is None else now
    age = settings.landing_min_age
    return {
        f.name: f"modified less than {age:g} s ago (MESH_LANDING_MIN_AGE_SECONDS)"
        for f in files
        if now - f.modified < age
    }


def load_landing(
    settings: MeshSettings,
    contract: Contract,
    window: DateWindow | None = None,
    *,
    screen: Screen | None = None,
) -> LandingLoad:
    """All good rows of the product's complete landing files (in `window`), each file
    read, validated and screened (`screen`: the rows breaking blocking rules) before any
    is used; bad files, or only their breaking rows (`onViolation: quarantine_rows`),
    are quarantined and the other files keep loading."""
    frames, load = [], LandingLoad(pl.DataFrame(schema=contract.polars_schema))
    for file, _, kept in good_files(settings, contract, window, screen, load):
        frames.append(kept)
        load.rows[file.name] = kept.height  # good rows only, in frame order (lineage)
    if frames:
        load.frame = pl.concat(frames, how="vertical", rechunk=False)
    return load


def good_files(
    settings: MeshSettings,
    contract: Contract,
    window: DateWindow | None,
    screen: Screen | None,
    load: LandingLoad,
) -> Iterator[tuple[LandingFile, pl.DataFrame, pl.DataFrame]]:
    """Each complete landing file that may be loaded, with its rows and those that may be
    written; files still arriving, bad files and breaking rows are recorded in `load`."""
    files = landing_files(settings, contract, window)
    load.unsettled = unsettled(settings, contract, files)
    first_with: dict[str, str] = {}  # content hash → the first file of this load with it
    for file in (f for f in files if f.name not in load.unsettled):
        try:
            frame = read_landing_file(settings, file, contract)
        except LandingError as exc:
            quarantine(settings, contract, file, str(exc))
            load.quarantined[file.name] = str(exc)
            continue
        if _replay(settings, contract, file, first_with, load):
            continue
        kept = screened(settings, contract, file, frame, screen, load) if screen else frame
        if kept is not None:
            first_with.setdefault(content_hash(settings, file), file.name)
            load.loaded.append(file)
            yield file, frame, kept


def _replay(
    settings: MeshSettings,
    contract: Contract,
    file: LandingFile,
    first_with: dict[str, str],
    load: LandingLoad,
) -> bool:
    """A file with the same bytes as another this load loads, or as a file loaded under
    another name (a source sending a day twice): skipped and recorded as that file's
    replay, so its rows are never in the product twice, even without a primary key. (The
    same bytes as a file set aside are judged, and set aside, on their own.)"""
    digest = content_hash(settings, file)  # of the bytes just read: no second read
    original = first_with.get(digest) or _loaded_with(settings, contract, digest) or file.name
    if original == file.name:
        return False
    load.replays[file.name] = f"the same bytes as {original}"
    _write_record(settings, contract, file, digest, replay_of=original)
    return True


def screened(
    settings: MeshSettings,
    contract: Contract,
    file: LandingFile,
    frame: pl.DataFrame,
    screen: Screen,
    load: LandingLoad,
) -> pl.DataFrame | None:
    """The file's rows that may be written (None: the file was quarantined), recording
    what was set aside in `load`."""
    violations = screen(contract, frame)
    if not violations:
        return frame
    good, bad = split_rows(frame, violations)
    reason = f"{bad.height:,} row(s) break blocking contract rules: {summary(violations)}"
    if contract.on_violation == "quarantine_rows" and not good.is_empty():
        quarantine_rows(settings, contract, file, bad, violations)
        load.rows_quarantined[file.name] = reason
        return good
    quarantine(settings, contract, file, reason, violations)
    load.quarantined[file.name] = reason
    return None
