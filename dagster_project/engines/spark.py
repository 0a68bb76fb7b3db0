"""Products on Spark: Delta tables read and written from Spark, transforms on Spark DataFrames.

With delta-spark on the classpath (`SparkResource(delta_spark=True)`) tables are read and
written with `format("delta")`. Without it (here: no jars can be fetched) the engine still
never reads a raw table folder nor collects rows to the driver:
- reading: the files of the table's current snapshot (from delta-rs) are read as Parquet,
  partition values joined back in from the Delta log;
- writing: executors write Parquet files in parallel into the table folder, then the driver
  commits them to the Delta log in one delta-rs transaction (only file names, sizes and
  row counts pass through the driver);
- merging a partitioned product: only the days the incoming keys touch are rewritten.
Write modes mean what they mean on the local engine (dagster_project.lake.storage.Lake.write).
Nothing here needs the JVM or RDDs: it runs over Spark Connect as over a classic session.
"""

from __future__ import annotations

import json
import operator
import time
import uuid
from collections.abc import Collection
from datetime import date
from functools import reduce
from typing import Any
from urllib.parse import unquote

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Schema
from deltalake.transaction import AddAction, create_table_with_add_actions
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from dagster_project.core.contracts import Contract
from dagster_project.engines import spark_refusal
from dagster_project.lake.storage import (
    ONE_DAY,
    DateWindow,
    Lake,
    SchemaViolation,
    WriteResult,
    stretches,
    to_arrow,
)

SEQUENCE = "_mesh_seq"  # optional ordering column: on duplicate keys the highest wins


# -- types -----------------------------------------------------------------------------
def contract_arrow_schema(contract: Contract) -> pa.Schema:
    """The Arrow schema the local engine writes for a contract (so both engines agree)."""
    return to_arrow(pl.DataFrame(schema=contract.polars_schema)).schema


def spark_type(arrow_type: pa.DataType) -> Any:
    if pa.types.is_boolean(arrow_type):
        return T.BooleanType()
    if pa.types.is_int64(arrow_type) or pa.types.is_uint32(arrow_type):
        return T.LongType()
    if pa.types.is_integer(arrow_type):
        return T.IntegerType()
    if pa.types.is_floating(arrow_type):
        return T.DoubleType()
    if pa.types.is_date(arrow_type):
        return T.DateType()
    if pa.types.is_timestamp(arrow_type):
        return T.TimestampType() if arrow_type.tz else T.TimestampNTZType()
    if pa.types.is_decimal(arrow_type):
        return T.DecimalType(arrow_type.precision, arrow_type.scale)
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return T.StringType()
    raise TypeError(f"no Spark type for Arrow type {arrow_type}")


def spark_schema(schema: pa.Schema, drop: tuple[str, ...] = ()) -> Any:
    return T.StructType(
        [T.StructField(f.name, spark_type(f.type), True) for f in schema if f.name not in drop]
    )


def conform(frame: DataFrame, contract: Contract) -> DataFrame:
    """Contract columns in contract order and types (Lake.write's `enforce_schema`)."""
    missing = [c.name for c in contract.columns if c.name not in frame.columns and c.required]
    if missing:
        raise SchemaViolation(f"{contract.key}: missing required column(s) {', '.join(missing)}")
    columns = []
    for field in contract_arrow_schema(contract):
        target = spark_type(field.type)
        value = F.col(field.name) if field.name in frame.columns else F.lit(None)
        columns.append(value.cast(target).alias(field.name))
    extra = [F.col(SEQUENCE)] if SEQUENCE in frame.columns else []
    return frame.select(*columns, *extra)


def latest_per_key(frame: DataFrame, keys: list[str]) -> DataFrame:
    """One row per key; with a `_mesh_seq` column the last-arrived row wins (as the local
    engine's keep-last), otherwise any (transforms usually produce unique keys)."""
    if SEQUENCE not in frame.columns:
        return frame.dropDuplicates(keys)
    rank = F.row_number().over(Window.partitionBy(*keys).orderBy(F.col(SEQUENCE).desc()))
    return frame.withColumn("_mesh_rank", rank).filter("_mesh_rank = 1").drop("_mesh_rank")


# -- reading ---------------------------------------------------------------------------
def read_delta(
    spark: SparkSession,
    lake: Lake,
    key: str,
    *,
    window: DateWindow | None = None,
    days: Collection[date] | None = None,
    delta_spark: bool = False,
) -> DataFrame:
    """The table's current snapshot as a Spark DataFrame (`window` or `days`: only those
    days of its day column, a date partition or a timestamp's UTC days)."""
    table = lake.table(key)
    partitions = list(table.metadata().partition_columns)
    if window is not None:
        days = window.days
    if delta_spark:
        frame = spark.read.format("delta").load(lake.uri(key))
    else:
        frame = _read_snapshot_files(spark, table, partitions, days)
    column = lake.day_column(key)
    if days is not None and column:  # half-open ranges, as DateWindow.expr
        ranges = [
            (F.col(column) >= F.lit(w.start)) & (F.col(column) < F.lit(w.end + ONE_DAY))
            for w in stretches(days)
        ]
        frame = frame.filter(reduce(operator.or_, ranges, F.lit(False)))
    return frame


def _read_snapshot_files(
    spark: SparkSession,
    table: DeltaTable,
    partitions: list[str],
    days: Collection[date] | None,
) -> DataFrame:
    schema = pa.schema(table.schema().to_arrow())
    files = _snapshot_files(table, partitions)
    if days is not None and partitions:  # prune on the log's partition values
        wanted = {d.isoformat() for d in days}
        files = [f for f in files if f["partition"].get(partitions[0]) in wanted]
    file_schema = spark_schema(schema, drop=tuple(partitions))
    if not files:
        return spark.createDataFrame([], spark_schema(schema))
    frame = spark.read.schema(file_schema).parquet(*[f["uri"] for f in files])
    if not partitions:
        return frame.select(*schema.names)
    # Partition values live in the log, not in the files: join them back by file name.
    values = spark.createDataFrame(
        [(f["name"], *[f["partition"].get(p) for p in partitions]) for f in files],
        ["_mesh_file", *[f"_mesh_part_{p}" for p in partitions]],
    )
    folder_and_name = F.concat_ws(
        "/", *[F.element_at(F.split("_metadata.file_path", "/"), i) for i in (-2, -1)]
    )
    frame = frame.withColumn("_mesh_file", F.url_decode(folder_and_name))
    frame = frame.join(F.broadcast(values), "_mesh_file")
    for name in partitions:
        target = spark_type(schema.field(name).type)
        frame = frame.withColumn(name, F.col(f"_mesh_part_{name}").cast(target))
    return frame.select(*schema.names)


def _snapshot_files(table: DeltaTable, partitions: list[str]) -> list[dict[str, Any]]:
    """URI, file key (folder and name: Spark reuses a name across partition folders) and
    partition values (as strings) of every file in the snapshot."""
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    by_key = {_file_key(unquote(a["path"])): a for a in actions}
    files = []
    for file_uri in table.file_uris():
        key = _file_key(unquote(file_uri))
        # Files at the table's root (delta-rs's, unpartitioned) have a one-part key there
        action = by_key[key] if partitions else {}
        values = {p: _partition_text(action.get(f"partition.{p}")) for p in partitions}
        files.append({"uri": file_uri, "name": key, "partition": values})
    return files


def _file_key(path: str) -> str:
    return "/".join(path.rsplit("/", 2)[-2:])


def _partition_text(value: Any) -> str | None:
    return (
        None
        if value is None
        else (value.isoformat() if hasattr(value, "isoformat") else str(value))
    )


# -- writing ---------------------------------------------------------------------------
def write_delta(
    lake: Lake,
    contract: Contract,
    frame: DataFrame,
    *,
    window: DateWindow | None = None,
    days: Collection[date] | None = None,
    mode: str | None = None,
    commit_metadata: dict[str, str] | None = None,
    delta_spark: bool = False,
) -> WriteResult:
    """Write a Spark DataFrame as the contract's product, in the contract's write mode;
    `days` (partition overwrite): only those days of `window` are replaced."""
    refusal = spark_refusal(contract)
    if refusal:
        raise SchemaViolation(refusal)
    mode = requested = mode or contract.write_mode
    frame = conform(frame, contract)
    if contract.primary_key and mode in {"merge", "partition_overwrite", "overwrite"}:
        frame = latest_per_key(frame, contract.primary_key)
    frame = frame.drop(SEQUENCE) if SEQUENCE in frame.columns else frame
    metadata = {
        "mesh.contract": contract.key,
        "mesh.contract_version": contract.version,
        "mesh.engine": "spark",
        **(commit_metadata or {}),
    }
    exists = lake.exists(contract.key)
    part = contract.partition_column
    days = sorted(days) if days is not None else window.days if window is not None else None
    if mode == "partition_overwrite" and exists and days == []:  # no day to replace
        return _result(lake, contract, requested, rows=0)
    if mode == "merge" and exists:
        frame, days = _merged(lake, contract, frame, delta_spark)
        if part and not days:  # no rows: nothing to merge
            return _result(lake, contract, requested, rows=0)
        mode = "partition_overwrite" if part else "overwrite"  # old files stay until vacuum
    if mode == "partition_overwrite" and exists and days is None:
        window = _window_of(frame, part)
        if window is None:  # no rows and no window: no day to replace
            return _result(lake, contract, requested, rows=0)
        days = window.days
    if delta_spark:
        _write_with_delta_spark(lake, contract, frame, mode, days, exists, metadata)
        rows = None
    else:
        rows = _write_parquet_and_commit(lake, contract, frame, mode, days, exists, metadata)
    return _result(lake, contract, requested, rows=rows)


def _merged(
    lake: Lake, contract: Contract, frame: DataFrame, delta_spark: bool
) -> tuple[DataFrame, list[date] | None]:
    """Merge on the primary key (when-matched-update-all, when-not-matched-insert-all) as
    the rows that replace part of the table: the days the incoming rows touch for a
    partitioned product (the days they carry, and the days where their keys are now when
    the key does not hold the partition column), else the whole table (days None)."""
    keys, part = contract.primary_key, contract.partition_column
    session, incoming = frame.sparkSession, frame.select(*keys)
    days = None
    if part:
        days = _distinct(frame, part)
        if part not in keys:  # a key may move to another day: its old day is touched too
            table = read_delta(session, lake, contract.key, delta_spark=delta_spark)
            days |= _distinct(table.select(*keys, part).join(incoming, keys, "left_semi"), part)
        days = sorted(days)
    current = read_delta(session, lake, contract.key, days=days, delta_spark=delta_spark)
    return current.join(incoming, keys, "left_anti").unionByName(frame), days


def _distinct(frame: DataFrame, column: str) -> set[Any]:
    """The column's distinct non-null values (a partition column: a few per load)."""
    return {row[0] for row in frame.select(column).distinct().collect() if row[0] is not None}


def _write_with_delta_spark(
    lake: Lake,
    contract: Contract,
    frame: DataFrame,
    mode: str,
    days: list[date] | None,
    exists: bool,
    metadata: dict[str, str],
) -> None:
    part = contract.partition_column
    writer = frame.write.format("delta").option("userMetadata", json.dumps(metadata))
    if part:
        writer = writer.partitionBy(part)
    if mode == "partition_overwrite" and exists and days is not None:
        listed = ", ".join(f"DATE'{d.isoformat()}'" for d in days)
        writer = writer.mode("overwrite").option("replaceWhere", f"{part} IN ({listed})")
    elif mode == "append" and exists:
        writer = writer.mode("append")
    else:
        writer = writer.mode("overwrite").option("overwriteSchema", "true")
    writer.save(lake.uri(contract.key))


def _write_parquet_and_commit(
    lake: Lake,
    contract: Contract,
    frame: DataFrame,
    mode: str,
    days: list[date] | None,
    exists: bool,
    metadata: dict[str, str],
) -> int:
    """Returns the number of rows written (from the new files' footers)."""
    uri = lake.uri(contract.key)
    part = contract.partition_column
    partition_by = contract.partition_by or None
    folder = f"spark-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
    if part:
        # One task per day, so one file per day and write (capped by the session's
        # spark.sql.files.maxRecordsPerFile), not one per task and day: tiny files cost
        # every later read and the log one add action each.
        frame = frame.repartition(part)
    # No _SUCCESS marker in the table folder (a writer option: Connect sessions cannot
    # set Hadoop settings, and the option reaches the committer on either session).
    writer = frame.write.mode("error").option(  # "error": Connect knows no "errorifexists"
        "mapreduce.fileoutputcommitter.marksuccessfuljobs", "false"
    )
    if part:
        writer = writer.partitionBy(part)
    writer.parquet(f"{uri.rstrip('/')}/{folder}")
    actions = _add_actions(uri, folder, partition_by or [])
    rows = sum(json.loads(a.stats)["numRecords"] for a in actions)
    schema = contract_arrow_schema(contract)
    commit = CommitProperties(custom_metadata=metadata)
    if not exists:
        create_table_with_add_actions(
            uri,
            Schema.from_arrow(schema),
            actions,
            mode="overwrite",
            partition_by=partition_by,
            name=contract.key,
            description=contract.description,
            storage_options=lake.storage_options,
            commit_properties=commit,
        )
        return rows
    table = lake.table(contract.key)
    if mode == "append":
        table.create_write_transaction(
            actions, "append", schema, partition_by, commit_properties=commit
        )
    elif mode == "partition_overwrite" and days is not None:
        table.create_write_transaction(
            actions,
            "overwrite",
            schema,
            partition_by,
            [(part, "in", [d.isoformat() for d in days])],
            commit_properties=commit,
        )
    else:
        table.create_write_transaction(
            actions, "overwrite", schema, partition_by, commit_properties=commit
        )
    return rows


def _add_actions(uri: str, folder: str, partitions: list[str]) -> list[AddAction]:
    """Delta add actions for the Parquet files Spark wrote below `uri/folder`: sizes from
    the listing, row counts from the footers (no data is read)."""
    fs, root = pafs.FileSystem.from_uri(f"{uri.rstrip('/')}/{folder}")
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    actions = []
    for info in infos:
        if info.type != pafs.FileType.File or not info.base_name.endswith(".parquet"):
            continue
        relative = info.path[len(root) :].lstrip("/")
        values = dict(
            unquote(segment).split("=", 1) for segment in relative.split("/")[:-1] if "=" in segment
        )
        values = {k: (None if v == "__HIVE_DEFAULT_PARTITION__" else v) for k, v in values.items()}
        rows = pq.read_metadata(info.path, filesystem=fs).num_rows
        actions.append(
            AddAction(
                path=f"{folder}/{relative}",
                size=info.size,
                partition_values={p: values.get(p) for p in partitions},
                modification_time=int(info.mtime.timestamp() * 1000) if info.mtime else 0,
                data_change=True,
                stats=json.dumps({"numRecords": rows}),
            )
        )
    return actions


def _window_of(frame: DataFrame, column: str | None) -> DateWindow | None:
    if not column:
        return None
    low, high = frame.agg(F.min(column), F.max(column)).first()
    return None if low is None else DateWindow(low, high)


def _result(lake: Lake, contract: Contract, mode: str, rows: int | None) -> WriteResult:
    info = lake.info(contract.key)
    table_rows = info.rows if info else 0
    return WriteResult(
        uri=lake.uri(contract.key),
        version=info.version if info else -1,
        mode=mode,
        rows_written=table_rows if rows is None else rows,
        table_rows=table_rows,
        metrics={},
    )
