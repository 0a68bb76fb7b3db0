"""Product assets whose rows are computed and written by Spark.

The asset is the local engine's asset (same key, contract, checks, partitions,
automation); only the rows' path differs: landing files or input tables are read by
Spark, the transform's Spark version runs on executors, the write goes through
dagster_project.engines.spark. The contract rules, policies and quality checks then run
on what was written (the partition's rows read back, or the whole table when it is not
partitioned), exactly as on the local engine.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg
import polars as pl
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from dagster_project.contracts import Contract
from dagster_project.engines.resources import SparkResource
from dagster_project.engines.spark import SEQUENCE, read_delta, spark_schema, write_delta
from dagster_project.engines.spark import contract_arrow_schema as arrow_schema
from dagster_project.ingestion import READERS, LandingFile, landing_files, quarantine, record_loaded
from dagster_project.products import (
    Product,
    _window,
    is_partitioned,
    product_asset_kwargs,
    publish,
)
from dagster_project.quality.config import flag_column, quality_config
from dagster_project.resources import MeshResource
from dagster_project.settings import MeshSettings
from dagster_project.storage import DateWindow, Lake

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SPARK_READERS = {".parquet": "parquet", ".csv": "csv"}


def build_spark_product_asset(contract: Contract, product: Product) -> dg.AssetsDefinition:
    """The product's asset, computed on Spark (needs the `spark` resource)."""
    if not product.from_landing and product.spark is None:
        raise ValueError(f"{contract.key} runs on Spark but its product has no `spark=` transform")
    kwargs = product_asset_kwargs(contract, product)
    kwargs["kinds"] = {"delta", "spark"}
    partitioned = is_partitioned(contract)

    @dg.asset(**kwargs)
    def _product(
        context: dg.AssetExecutionContext, mesh: MeshResource, spark: SparkResource
    ) -> dg.MaterializeResult:
        window = _window(context) if partitioned else None
        return materialize_on_spark(context, mesh.lake, spark, contract, product, window)

    return _product


def materialize_on_spark(
    context: dg.AssetExecutionContext,
    lake: Lake,
    spark: SparkResource,
    contract: Contract,
    product: Product,
    window: DateWindow | None,
) -> dg.MaterializeResult:
    session = spark.get_session()
    extra: dict[str, Any] = {"engine": "spark"}
    loaded: list[LandingFile] = []
    if product.from_landing:
        frame, loaded, quarantined = read_landing(session, lake.settings, contract, window)
        if quarantined:
            extra["quarantined"] = dg.MetadataValue.json(quarantined)
        extra["loaded_files"] = dg.MetadataValue.json([f.name for f in loaded])
        if not loaded:
            if not lake.exists(contract.key):
                raise dg.Failure(f"no loadable landing files for {contract.key}")
            if contract.write_mode in {"merge", "append"}:  # nothing new to add
                return publish(
                    context,
                    lake,
                    contract,
                    _written(lake, contract, window),
                    window=window,
                    extra=extra,
                    written=_unchanged(lake, contract),
                )
    else:
        inputs = [_read_input(session, lake, key, window, spark) for key in product.inputs]
        frame = product.spark(*inputs)
    written = write_delta(
        lake,
        contract,
        _flag_imputable(frame, contract),
        window=window,
        commit_metadata={"dagster.run_id": context.run_id},
        delta_spark=spark.delta_spark,
    )
    result = publish(
        context,
        lake,
        contract,
        _written(lake, contract, window),
        window=window,
        extra=extra,
        written=written,
    )
    if loaded:
        record_loaded(lake.settings, contract, loaded)
    return result


def _flag_imputable(frame: "DataFrame", contract: Contract) -> "DataFrame":
    """`<column>_imputed` as the local engine sets it for present values (false). The
    imputation model itself runs on the local engine only: missing values stay missing
    on Spark (and fail `not_null` where the column is required)."""
    from pyspark.sql import functions as F

    for column in quality_config(contract).imputable:
        flag = flag_column(column)
        if column in frame.columns:
            present = F.when(F.col(column).isNotNull(), F.lit(False))
            value = F.coalesce(F.col(flag), present) if flag in frame.columns else present
            frame = frame.withColumn(flag, value)
    return frame


def _read_input(
    session: "SparkSession", lake: Lake, key: str, window: DateWindow | None, spark: SparkResource
) -> "DataFrame":
    if not lake.exists(key):
        raise dg.Failure(f"input {key} has not been materialized yet")
    part = lake.partition_columns(key)
    return read_delta(
        session, lake, key, window=window if part else None, delta_spark=spark.delta_spark
    )


def _written(lake: Lake, contract: Contract, window: DateWindow | None) -> pl.DataFrame:
    """What the checks look at: the window's rows of a partitioned product, else the table."""
    part = contract.partition_column
    if window is not None and part:
        return lake.read(contract.key, window=window, column=part)
    return lake.read(contract.key)


def _unchanged(lake: Lake, contract: Contract) -> Any:
    from dagster_project.storage import WriteResult

    info = lake.info(contract.key)
    return WriteResult(info.uri, info.version, contract.write_mode, 0, info.rows, {})


# -- landing ---------------------------------------------------------------------------
def read_landing(
    session: "SparkSession", settings: MeshSettings, contract: Contract, window: DateWindow | None
) -> tuple["DataFrame", list[LandingFile], dict[str, str]]:
    """The landing files' rows as one Spark DataFrame, with the local engine's file
    checks: metadata (type, columns) on the driver from footers and headers, row checks
    (empty, null keys, rows of another day) in one Spark aggregation per load. Bad files
    are quarantined; on duplicate keys the later file (then the later row) wins."""

    quarantined: dict[str, str] = {}
    good: list[LandingFile] = []
    headers: dict[str, list[str]] = {}
    for file in landing_files(settings, contract, window):
        try:
            headers[file.uri] = _columns(settings, file, contract)
            good.append(file)
        except ValueError as exc:
            quarantine(settings, contract, file, str(exc))
            quarantined[file.name] = str(exc)
    if not good:
        return session.createDataFrame([], spark_schema(arrow_schema(contract))), [], quarantined
    frame = _ordered_rows(session, contract, good, headers)
    problems = _row_problems(frame, contract, good)
    for file_name, reason in problems.items():
        bad = next(f for f in good if f.name == file_name)
        quarantine(settings, contract, bad, reason)
        quarantined[file_name] = reason
        good.remove(bad)
    if not good:
        return session.createDataFrame([], spark_schema(arrow_schema(contract))), [], quarantined
    if problems:  # a moved file must not stay in the plan
        frame = _ordered_rows(session, contract, good, headers)
    return frame.drop("_mesh_file", "_mesh_file_rank", "_mesh_path"), good, quarantined


def _ordered_rows(
    session: "SparkSession",
    contract: Contract,
    files: list[LandingFile],
    headers: dict[str, list[str]],
) -> "DataFrame":
    """The files' rows with their file name and `_mesh_seq` (file order, then row order)."""
    from pyspark.sql import functions as F

    frame = _read_files(session, contract, files, headers)
    frame = frame.withColumn("_mesh_file", F.element_at(F.split("_mesh_path", "/"), -1))
    ranks = session.createDataFrame(
        [(f.name, i) for i, f in enumerate(files)], ["_mesh_file", "_mesh_file_rank"]
    )
    frame = frame.join(F.broadcast(ranks), "_mesh_file")
    return frame.withColumn(
        SEQUENCE, F.struct("_mesh_file_rank", F.monotonically_increasing_id().alias("row"))
    )


def _columns(settings: MeshSettings, file: LandingFile, contract: Contract) -> list[str]:
    """The file's column names from its footer or header line; ValueError if unusable."""
    suffix = "." + file.name.rsplit(".", 1)[-1].lower() if "." in file.name else ""
    if suffix in READERS and suffix not in SPARK_READERS:  # fine locally: never quarantine
        raise dg.Failure(f"{file.name}: {suffix} landing files are not read on the Spark engine")
    if suffix not in SPARK_READERS:
        raise ValueError(f"unsupported file type {suffix or '(none)'}")
    info = settings.file_info(file.uri)
    if not info.size:
        raise ValueError("the file is empty")
    try:
        if suffix == ".parquet":
            columns = pq.read_schema(settings.fs_path(file.uri), filesystem=settings.fs).names
        else:
            with settings.fs.open_input_stream(settings.fs_path(file.uri)) as stream:
                columns = stream.read(65536).split(b"\n", 1)[0].decode().strip().split(",")
    except (OSError, pafs.ArrowException, UnicodeDecodeError) as exc:
        raise ValueError(f"unreadable {SPARK_READERS[suffix]} file: {exc}") from exc
    unknown = [c for c in columns if c not in contract.column_names]
    if unknown:
        raise ValueError(f"columns not in the contract: {', '.join(unknown)}")
    missing = [c.name for c in contract.columns if c.required and c.name not in columns]
    if missing:
        raise ValueError(f"{contract.key}: missing required column(s) {', '.join(missing)}")
    return columns


def _read_files(
    session: "SparkSession",
    contract: Contract,
    files: list[LandingFile],
    headers: dict[str, list[str]],
) -> "DataFrame":
    """Parquet files in one read (missing optional columns are null); CSV files grouped
    by header, each group read with the contract's types for its columns. `_mesh_path`:
    the file of each row (taken before the union, which drops hidden `_metadata`)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    schema = arrow_schema(contract)
    frames = []
    parquet = [f.uri for f in files if f.name.lower().endswith(".parquet")]
    if parquet:
        frame = session.read.schema(spark_schema(schema)).parquet(*parquet)
        frames.append(frame.withColumn("_mesh_path", F.col("_metadata.file_path")))
    groups: dict[tuple[str, ...], list[str]] = {}
    for f in files:
        if f.name.lower().endswith(".csv"):
            groups.setdefault(tuple(headers[f.uri]), []).append(f.uri)
    for header, uris in groups.items():
        fields = [f for f in spark_schema(schema).fields if f.name in header]
        by_name = {f.name: f for f in fields}
        csv_schema = T.StructType([by_name[c] for c in header])
        frames.append(
            session.read.schema(csv_schema)
            .option("header", True)
            .option("mode", "FAILFAST")
            .csv(uris)
            .select(*header, F.col("_metadata.file_path").alias("_mesh_path"))
        )
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other, allowMissingColumns=True)
    return frame


def _row_problems(
    frame: "DataFrame", contract: Contract, files: list[LandingFile]
) -> dict[str, str]:
    """File name → why its rows are rejected (the local engine's reasons)."""
    from pyspark.sql import functions as F

    keys, part = contract.primary_key, contract.partition_column
    aggregates = [F.count(F.lit(1)).alias("rows")]
    if keys:
        null_key = (
            F.greatest(*[F.col(k).isNull() for k in keys])
            if len(keys) > 1
            else (F.col(keys[0]).isNull())
        )
        aggregates.append(F.sum(null_key.cast("long")).alias("null_keys"))
    days = {f.name: f.day for f in files}
    if part:
        aggregates += [F.min(part).alias("first_day"), F.max(part).alias("last_day")]
    problems: dict[str, str] = {}
    seen = set()
    for row in frame.groupBy("_mesh_file").agg(*aggregates).collect():  # one row per file
        seen.add(row["_mesh_file"])
        day = days.get(row["_mesh_file"])
        if keys and row["null_keys"]:
            problems[row["_mesh_file"]] = (
                f"{row['null_keys']:,} row(s) with an empty primary key ({', '.join(keys)})"
            )
        elif part and day is not None and (row["first_day"] != day or row["last_day"] != day):
            problems[row["_mesh_file"]] = f"row(s) with {part} other than the file's day {day}"
    for name in set(days) - seen:
        problems[name] = "the file has no rows"
    return problems
