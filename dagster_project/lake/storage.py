"""The lake: Delta tables for data products, written and read through one API.

Writes enforce the contract's schema and follow its write mode: merge on the
primary key (re-running never duplicates rows), partition overwrite (a day is
replaced as a whole), append, or full overwrite. Reads are polars lazy scans or
pyarrow datasets (for DuckDB). Tables live at `MESH_HOME/lake/<domain>/<product>`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings, get_settings

if TYPE_CHECKING:  # pyarrow.dataset imports pandas (~0.5 s): only the callers of dataset() need it
    import pyarrow.dataset as pads


class SchemaViolation(ValueError):
    """Data that does not fit its contract: missing columns or values of the wrong type."""


ONE_DAY = timedelta(days=1)
# Marks a timestamp column as its table's daily partition (Delta column metadata): the
# table has no Delta partition for it, and readers of the lake find its day column here.
DAY_FIELD = "mesh.partition"


def day_of(column: str) -> pl.Expr:
    """The day a row's partition column puts it in: a date itself, a timestamp's UTC day
    (a timestamp without a zone is UTC, as the lake stores it). Named as the column."""
    return pl.col(column).cast(pl.Date)


@dataclass(frozen=True)
class DateWindow:
    """An inclusive range of days: the partitions one write or read covers.

    Its filters are half-open ranges, `start <= column < end + 1 day`, so one filter
    serves a date and a timestamp partition column (23:59:59 is the day's, midnight the
    next day's) and still prunes on Delta partitions or file statistics."""

    start: date
    end: date

    def sql(self, column: str) -> str:
        """The predicate delta-rs (DataFusion) takes: it casts a day to midnight."""
        after = (self.end + ONE_DAY).isoformat()
        return f"{column} >= '{self.start.isoformat()}' AND {column} < '{after}'"

    def expr(self, column: str) -> pl.Expr:
        # polars compares a zoned timestamp with a day as instants (midnight UTC)
        return (pl.col(column) >= self.start) & (pl.col(column) < self.end + ONE_DAY)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


@dataclass(frozen=True)
class TableInfo:
    uri: str
    version: int
    rows: int
    last_update: datetime
    columns: list[str]


@dataclass(frozen=True)
class WriteResult:
    uri: str
    version: int
    mode: str
    rows_written: int
    table_rows: int
    metrics: dict[str, Any]
    frame: pl.DataFrame | None = None  # the rows as written: contract schema, one per key
    rows_retracted: int = 0  # rows deleted by key in the same commit


def enforce_schema(df: pl.DataFrame, contract: Contract, *, fill: bool = False) -> pl.DataFrame:
    """Columns in contract order, cast to contract types; missing required columns rejected
    (`fill`: added as nulls too, e.g. for keys only).

    Optional columns that are missing are added as nulls; columns the contract does
    not know are dropped (the contract, not the source, defines the product)."""
    missing = [c.name for c in contract.columns if c.name not in df.columns and c.required]
    if missing and not fill:
        raise SchemaViolation(f"{contract.key}: missing required column(s) {', '.join(missing)}")
    exprs = []
    for col in contract.columns:
        if col.name not in df.columns:
            exprs.append(pl.lit(None, dtype=col.dtype).alias(col.name))
        elif df.schema[col.name] == col.dtype:
            exprs.append(pl.col(col.name))
        else:
            exprs.append(_cast(pl.col(col.name), df.schema[col.name], col.dtype))
    try:
        return df.select(exprs)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        first_line = str(exc).strip().splitlines()[0]  # not polars' hints and plan dump
        raise SchemaViolation(
            f"{contract.key}: values do not fit the contract types: {first_line}"
        ) from exc


def _cast(expr: pl.Expr, source: pl.DataType, target: pl.DataType) -> pl.Expr:
    """A strict cast; text dates and timestamps are parsed (polars 2 no longer casts them).
    A timestamp written with an offset ("2013-01-01T10:00:00Z", R's and ISO 8601's way) is
    its instant in UTC, as a zoned timestamp cast to the contract's is."""
    if source == pl.String and target == pl.Date:
        return expr.str.to_date(strict=True)
    if source == pl.String and isinstance(target, pl.Datetime) and target.time_zone is None:
        parsed = expr.str.to_datetime(time_unit=target.time_unit, time_zone="UTC", strict=True)
        return parsed.dt.replace_time_zone(None)
    if source == pl.String and isinstance(target, pl.Datetime):
        return expr.str.to_datetime(time_unit=target.time_unit, strict=True)
    return expr.cast(target, strict=True)


WRITE_BATCH_ROWS = 1 << 17


def to_arrow(df: pl.DataFrame) -> pa.Table:
    # Plain (large) strings, not string_view: DuckDB and Delta readers handle them everywhere.
    return df.to_arrow(compat_level=pl.CompatLevel.oldest())


def in_batches(table: pa.Table) -> pa.Table:
    """The same table in record batches of at most WRITE_BATCH_ROWS rows (zero-copy
    slices): delta-rs splits a batch by partition, and one 10M-row batch took it 3x the
    time and several GB more than the same rows in small batches."""
    return pa.Table.from_batches(table.to_batches(max_chunksize=WRITE_BATCH_ROWS), table.schema)


def may_have_duplicates(df: pl.DataFrame, columns: list[str]) -> bool:
    """False when no two rows share their `columns` values. Keys in strictly increasing
    order (as landed files usually are) prove it in one vectorized pass; otherwise
    distinct row hashes mean distinct keys: one hash pass instead of a group-by."""
    if df.height < 2 or _strictly_increasing(df, columns):
        return False
    return df.select(columns).hash_rows().n_unique() < df.height


def _strictly_increasing(df: pl.DataFrame, columns: list[str]) -> bool:
    """Every row's key tuple sorts after the previous row's (nulls: not proven)."""
    later = pl.lit(False)
    for name in reversed(columns):
        value, previous = pl.col(name), pl.col(name).shift()
        later = (value > previous) | ((value == previous) & later)
    return bool(df.select(later.slice(1).fill_null(False).all()).item())


RETRACT = "_mesh_retract"  # marks a merge source row that deletes its key


def lineage_columns(contract: Contract) -> list[str]:
    """What identifies a row within its file: the primary key, and the partition column
    (a key may be repeated in another day's partition)."""
    part = contract.partition_column
    return contract.primary_key + ([part] if part and part not in contract.primary_key else [])


def duplicate_count(df: pl.DataFrame, columns: list[str]) -> int:
    """Rows beyond the first of each distinct `columns` value."""
    if not may_have_duplicates(df, columns):
        return 0
    return df.height - df.select(columns).n_unique()


class Lake:
    """Delta tables of the mesh's products, addressed by `domain/product`."""

    def __init__(self, settings: MeshSettings | None = None):
        self.settings = settings or get_settings()

    @property
    def storage_options(self) -> dict[str, str] | None:
        return self.settings.storage_options or None

    def uri(self, key: str) -> str:
        domain, product = key.split("/")
        return self.settings.table_uri(domain, product)

    def table(self, key: str) -> DeltaTable:
        return DeltaTable(self.uri(key), storage_options=self.storage_options)

    def exists(self, key: str) -> bool:
        try:
            self.table(key)
            return True
        except TableNotFoundError:
            return False

    # -- reading -------------------------------------------------------------------
    def scan(
        self,
        key: str,
        *,
        window: DateWindow | None = None,
        column: str | None = None,
        version: int | None = None,
    ) -> pl.LazyFrame:
        """A lazy scan of a product; `window` keeps the days of `column` (its partition)."""
        frame = pl.scan_delta(self.uri(key), version=version, storage_options=self.storage_options)
        if window is not None:
            if column is None:
                raise ValueError("a window needs the date column to filter on")
            frame = frame.filter(window.expr(column))
        return frame

    def read(self, key: str, **kwargs: Any) -> pl.DataFrame:
        return self.scan(key, **kwargs).collect()

    def dataset(self, key: str) -> pads.Dataset:
        """A pyarrow dataset of the current snapshot, e.g. for DuckDB, its text read as
        string_view: delta-rs's merge writes text so, other writes as large_string, and
        pyarrow cannot compare a string with a string_view in a filter pushed down to it
        ("no kernel matching (string, string_view)")."""
        table = self.table(key)
        found = table.to_pyarrow_dataset()
        parts = set(table.metadata().partition_columns)  # their values are in the paths
        text = (pa.types.is_string, pa.types.is_large_string)
        schema = pa.schema(
            f.with_type(pa.string_view())
            if f.name not in parts and any(is_text(f.type) for is_text in text)
            else f
            for f in found.schema
        )
        if schema == found.schema:
            return found
        fragments = [
            found.format.make_fragment(f.path, found.filesystem, f.partition_expression)
            for f in found.get_fragments()
        ]
        return type(found)(fragments, schema, found.format, found.filesystem)

    def info(self, key: str) -> TableInfo | None:
        try:
            table = self.table(key)
        except TableNotFoundError:
            return None
        commit = table.history(1)[0]
        return TableInfo(
            uri=self.uri(key),
            version=table.version(),
            rows=_row_count(table),
            last_update=datetime.fromtimestamp(commit["timestamp"] / 1000, tz=UTC),
            columns=[f.name for f in table.schema().fields],
        )

    def column_types(self, key: str) -> dict[str, str]:
        """Column → Arrow type name of the table's current schema."""
        schema = pa.schema(self.table(key).schema().to_arrow())
        return {f.name: str(f.type) for f in schema}

    def partition_columns(self, key: str) -> list[str]:
        """The table's Delta partition columns (none for a timestamp's days)."""
        return list(self.table(key).metadata().partition_columns)

    def day_column(self, key: str) -> str | None:
        """The column a table's daily partitions are the days of: its Delta partition
        column, or the timestamp column its schema marks (DAY_FIELD); None: unpartitioned."""
        table = self.table(key)
        physical = list(table.metadata().partition_columns)
        if physical:
            return physical[0]
        marked = [f.name for f in table.schema().fields if (f.metadata or {}).get(DAY_FIELD)]
        return marked[0] if marked else None

    # -- writing -------------------------------------------------------------------
    def write(
        self,
        contract: Contract,
        df: pl.DataFrame,
        *,
        window: DateWindow | None = None,
        days: Collection[date] | None = None,
        mode: str | None = None,
        commit_metadata: dict[str, str] | None = None,
        retract: pl.DataFrame | None = None,
    ) -> WriteResult:
        """Write a frame as the contract's product, in the contract's write mode.

        `window` (partition overwrite) names the days being replaced; days inside it
        that have no rows in `df` end up empty, days outside it are untouched; `days`,
        when given, replaces only those days (none: nothing is written). `retract`
        (merge) holds keys (`lineage_columns`) to delete in the same commit: rows a
        corrected landing file no longer carries."""
        mode = mode or contract.write_mode
        df = enforce_schema(df, contract)
        keyed = contract.primary_key and mode in {"merge", "partition_overwrite", "overwrite"}
        if keyed and may_have_duplicates(df, contract.primary_key):
            # The last occurrence of a key wins: a later file corrects an earlier one.
            df = df.unique(subset=contract.primary_key, keep="last", maintain_order=True)
        uri = self.uri(contract.key)
        metadata = {
            "mesh.contract": contract.key,
            "mesh.contract_version": contract.version,
            **(commit_metadata or {}),
        }
        commit = CommitProperties(custom_metadata=metadata)
        partition_by = contract.partition_by or None
        data = in_batches(_marked(to_arrow(df), contract))
        exists = self.exists(contract.key)

        if mode == "merge" and exists:
            metrics = self._merge(contract, df, retract, commit)
        elif mode == "partition_overwrite" and exists:
            part = contract.partition_column
            window = window or _window_of(df, part)
            predicate = window.sql(part) if window and days is None else days_sql(part, days)
            if predicate:  # no rows and no window (or no day given): no day to replace
                write_deltalake(
                    uri,
                    data,
                    mode="overwrite",
                    predicate=predicate,
                    partition_by=partition_by,
                    storage_options=self.storage_options,
                    commit_properties=commit,
                )
            metrics = {}
        else:
            write_mode = "append" if (mode == "append" and exists) else "overwrite"
            write_deltalake(
                uri,
                data,
                mode=write_mode,
                partition_by=partition_by,
                schema_mode="overwrite" if write_mode == "overwrite" else None,
                storage_options=self.storage_options,
                commit_properties=commit,
                description=contract.description,
                name=contract.key,
            )
            metrics = {}
        table = self.table(contract.key)
        return WriteResult(
            uri=uri,
            version=table.version(),
            mode=mode,
            rows_written=df.height,
            table_rows=_row_count(table),
            metrics=dict(metrics),
            frame=df,
            rows_retracted=int(metrics.get("num_target_rows_deleted", 0)),
        )

    def _merge(
        self,
        contract: Contract,
        df: pl.DataFrame,
        retract: pl.DataFrame | None,
        commit: CommitProperties,
    ) -> dict[str, Any]:
        """Upsert `df` on the primary key and delete the `retract` keys, in one commit.

        The keys ride in the merge source as rows marked RETRACT, so readers never see a
        half-done correction. A daily product's key may repeat on another day: there the
        match is on `lineage_columns`, so a day's key never deletes another day's row."""
        on = contract.primary_key
        source = df.with_columns(pl.lit(False).alias(RETRACT))
        if retract is not None and not retract.is_empty():
            if contract.write_mode != "merge":  # e.g. retracting a daily product's file
                on = lineage_columns(contract)
            keys = retract.select(on).unique().join(df.select(on), on=on, how="anti")
            tombstones = enforce_schema(keys, contract, fill=True)
            source = pl.concat([source, tombstones.with_columns(pl.lit(True).alias(RETRACT))])
        predicate = " AND ".join(f"t.{k} = s.{k}" for k in on)
        keep = f"NOT s.{RETRACT}"
        return (
            self.table(contract.key)
            .merge(
                in_batches(to_arrow(source)),
                predicate,
                source_alias="s",
                target_alias="t",
                commit_properties=commit,
            )
            .when_matched_delete(predicate=f"s.{RETRACT}")
            .when_matched_update_all(predicate=keep, except_cols=[RETRACT])
            .when_not_matched_insert_all(predicate=keep, except_cols=[RETRACT])
            .execute()
        )

    def retract(
        self,
        contract: Contract,
        keys: pl.DataFrame,
        restore: pl.DataFrame | None = None,
        *,
        commit_metadata: dict[str, str] | None = None,
    ) -> WriteResult:
        """Delete the rows of `keys` (`lineage_columns`) and upsert `restore` (rows another
        file still brings), in one commit, whatever the product's write mode."""
        restore = restore if restore is not None else pl.DataFrame(schema=contract.polars_schema)
        return self.write(
            contract, restore, mode="merge", commit_metadata=commit_metadata, retract=keys
        )


def _marked(table: pa.Table, contract: Contract) -> pa.Table:
    """`table` with its timestamp partition column marked as the day column (DAY_FIELD):
    a table without Delta partitions still says which column its days are of."""
    part = contract.partition_column
    if not part or contract.partition_by:
        return table
    fields = [f.with_metadata({DAY_FIELD: "day"}) if f.name == part else f for f in table.schema]
    return table.cast(pa.schema(fields))


def _window_of(df: pl.DataFrame, column: str) -> DateWindow | None:
    """The days of the frame's rows (by their partition column), first to last."""
    if df.is_empty():
        return None
    first, last = df.select(day_of(column).min().alias("a"), day_of(column).max().alias("b")).row(0)
    return None if first is None else DateWindow(first, last)


def stretches(days: Collection[date]) -> list[DateWindow]:
    """The days as windows of consecutive days, oldest first."""
    found: list[DateWindow] = []
    for day in sorted(set(days)):
        if found and day == found[-1].end + ONE_DAY:
            found[-1] = DateWindow(found[-1].start, day)
        else:
            found.append(DateWindow(day, day))
    return found


def days_sql(column: str, days: Collection[date] | None) -> str | None:
    """The predicate keeping exactly `days` of `column` (None: no day): a range per
    stretch of consecutive days, as DateWindow.sql."""
    ranges = [f"({w.sql(column)})" for w in stretches(days or ())]
    return " OR ".join(ranges) or None


def _row_count(table: DeltaTable) -> int:
    """Rows from the Delta log's file statistics: no data is read."""
    # From the Arrow stream: `pa.table(...)` of a foreign table imports pandas (~0.4 s).
    actions = pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=True)).read_all()
    if actions.num_rows == 0:
        return 0
    counts = actions.column("num_records").to_pylist()
    if any(c is None for c in counts):  # files written without stats
        return table.to_pyarrow_dataset().count_rows()
    return int(sum(counts))
