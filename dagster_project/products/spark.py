"""Product assets whose rows are computed and written by Spark.

The asset is the local engine's asset (same key, contract, checks, partitions,
automation); only the rows' path differs: landing files (validated and screened first
by the local engine's own code, so the same files and rows are quarantined) or input
tables are read by Spark, missing imputable values are
filled by the local engine's model, the transform's Spark version runs on executors and
its rows are staged as Parquet and refused before the write as on the local engine (a row
breaking a blocking rule is never written), the write goes through
dagster_project.engines.spark. The contract rules, policies and
quality checks then run on what was written (the partition's rows read back, or the
whole table when it is not partitioned), exactly as on the local engine.
"""

import csv
import operator
from collections.abc import Sequence
from functools import reduce
from typing import Any

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.engines.spark import (
    SEQUENCE,
    conform,
    read_delta,
    spark_schema,
    spark_type,
    write_delta,
)
from dagster_project.engines.spark import contract_arrow_schema as arrow_schema
from dagster_project.engines.spark_resource import SparkResource
from dagster_project.lake.landing import LandingFile, LandingLoad, good_files
from dagster_project.lake.lineage import keys_gone, log_load
from dagster_project.lake.screening import Screen
from dagster_project.lake.storage import DateWindow, Lake, lineage_columns
from dagster_project.products.product import CheckFamily, Product, ProductRun, Rows, screen_of
from dagster_project.products.refusal import refuse_before_write, refuse_breaking_rows

# Every format the local engine reads (ingestion.READERS), as Spark reads it.
SPARK_READERS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".ndjson": "json"}


def rows_on_spark(run: ProductRun, product: Product, families: Sequence[CheckFamily]) -> Rows:
    """The product's rows computed and written by Spark; the checks then look at what was
    written (the window's rows of a partitioned product, else the whole table)."""
    lake, contract, window = run.lake, run.contract, run.window
    spark: SparkResource = run.resource("spark")
    session = spark.get_session()
    metadata: dict[str, Any] = {"engine": "spark"}
    loaded: list[LandingFile] = []
    keys: dict[str, pl.DataFrame] = {}  # file → the keys it brings (lake.lineage)
    staging = lake.settings.uri("staging", contract.domain, contract.product, run.context.run_id)
    if product.from_landing:
        screen = screen_of(families, lake, before_prepare=True)
        frame, loaded, load = read_landing(
            session, lake.settings, contract, window, keys, screen=screen, staging=staging
        )
        for label in ("quarantined", "rows_quarantined", "unsettled", "replays"):
            if getattr(load, label):
                metadata[label] = dg.MetadataValue.json(getattr(load, label))
        metadata["loaded_files"] = dg.MetadataValue.json([f.name for f in loaded])
        refusal = load.refusal(contract, table_exists=lake.exists(contract.key))
        if refusal:
            raise dg.Failure(refusal)
        if not loaded and contract.write_mode in {"merge", "append"}:  # nothing new to add
            return Rows(_written(lake, contract, window), metadata, written=True)
        days = load.replaced_days(contract, window)
    else:
        inputs = [_read_input(session, lake, key, window, spark) for key in product.inputs]
        frame, days = product.spark(*inputs), None
    imputations: list = []
    for family in families:  # before the write, on Spark: e.g. imputation
        frame, changes = family.prepare_spark(contract, frame)
        imputations += changes
    if product.from_landing:  # its files were screened one by one already
        _refuse_unfilled(run, frame, families)
    else:
        frame = _refused_or_staged(run, frame, families, staging)
    written = write_delta(
        lake,
        contract,
        frame,
        window=window,
        days=days,
        commit_metadata={"dagster.run_id": run.context.run_id},
        delta_spark=spark.delta_spark,
    )
    retracted = _retract_corrections(lake, contract, loaded, keys, run.context.run_id)
    if retracted:
        metadata["rows_retracted"] = retracted
    return Rows(
        _written(lake, contract, window),
        metadata,
        written=True,
        rows_written=written.rows_written,
        imputations=imputations,
        after_publish=lambda: _loaded(lake.settings, contract, loaded, keys, staging),
    )


def _refused_or_staged(
    run: ProductRun, frame: DataFrame, families: Sequence[CheckFamily], staging: str
) -> DataFrame:
    """A transform's rows staged as Parquet below `staging` (executors write them) and
    judged there by the local engine's own refusal before the write: nothing written when
    a row breaks a blocking rule or falls outside the run's days. Returns the staged rows,
    for the write (the transform is not run twice)."""
    files, uri = run.lake.settings.files, f"{staging}/rows"
    conform(frame, run.contract).write.mode("overwrite").parquet(uri)
    dataset = pads.dataset(files.path(uri), filesystem=files.fs, format="parquet")
    try:
        refuse_before_write(run, pl.from_arrow(dataset.to_table()), families)
    except dg.Failure:
        files.fs.delete_dir(files.path(staging))
        raise
    return frame.sparkSession.read.parquet(uri)


def _refuse_unfilled(run: ProductRun, frame: DataFrame, families: Sequence[CheckFamily]) -> None:
    """Landing files are screened before `prepare_spark` but for the nulls it fills
    (imputation): the rows still missing such a value (few: those it could not fill)
    come to the driver and are judged by the local engine's refusal before the write."""
    fills = {c for family in families for c in family.fills(run.contract)}
    filled = sorted(c for c in fills if c in frame.columns)
    if not filled:
        return
    missing = reduce(operator.or_, [F.col(c).isNull() for c in filled])
    gaps = conform(frame.filter(missing), run.contract)
    gaps = gaps.drop(SEQUENCE) if SEQUENCE in gaps.columns else gaps
    refuse_breaking_rows(run, pl.from_arrow(gaps.toArrow()), families)


def _retract_corrections(
    lake: Lake,
    contract: Contract,
    loaded: list[LandingFile],
    keys: dict[str, pl.DataFrame],
    run_id: str,
) -> int:
    """Delete the rows a merged product's corrected files no longer bring: a second commit
    after Spark's merge, which carries no deletions (the local engine's merge does both)."""
    if contract.write_mode != "merge" or not keys:
        return 0
    gone = keys_gone(lake.settings, contract, loaded, pl.concat(list(keys.values())))
    if gone is None:
        return 0
    return lake.retract(contract, gone, commit_metadata={"dagster.run_id": run_id}).rows_retracted


def _loaded(
    settings: MeshSettings,
    contract: Contract,
    loaded: list[LandingFile],
    keys: dict[str, pl.DataFrame],
    staging: str,
) -> None:
    """Log the loaded files with the keys they brought and drop the run's staged rows."""
    if loaded:
        log_load(settings, contract, loaded, lambda f: keys[f.name])
    if settings.files.exists(staging):
        settings.files.fs.delete_dir(settings.files.path(staging))


def _read_input(
    session: SparkSession, lake: Lake, key: str, window: DateWindow | None, spark: SparkResource
) -> DataFrame:
    if not lake.exists(key):
        raise dg.Failure(f"input {key} has not been materialized yet")
    return read_delta(session, lake, key, window=window, delta_spark=spark.delta_spark)


def _written(lake: Lake, contract: Contract, window: DateWindow | None) -> pl.DataFrame:
    """What the checks look at: the window's rows of a partitioned product, else the table."""
    part = contract.partition_column
    if window is not None and part:
        return lake.read(contract.key, window=window, column=part)
    return lake.read(contract.key)


# -- landing ----------------------------------------------------------------------------
def read_landing(
    session: SparkSession,
    settings: MeshSettings,
    contract: Contract,
    window: DateWindow | None,
    keys: dict[str, pl.DataFrame] | None = None,
    *,
    screen: Screen | None = None,
    staging: str | None = None,
) -> tuple[DataFrame, list[LandingFile], LandingLoad]:
    """The landing files' rows as one Spark DataFrame. Each complete file is first
    validated and screened on the driver, one at a time, by the local engine's own code
    (`read_landing_file`: file type, parsing, columns, types, empty file, empty keys,
    rows of another day; then `screened`: rows breaking blocking rules), so both engines
    quarantine the same files and rows for the same reasons; executors then read the good
    files, or a file's good rows staged below `staging` when some rows were set aside.
    On duplicate keys the later file (then the later row) wins. `keys`, when given, gets
    each good file's keys (`lineage_columns`) for the load log."""
    columns = lineage_columns(contract)
    load = LandingLoad(pl.DataFrame(schema=contract.polars_schema))
    read: list[LandingFile] = []  # what executors read: the file, or its staged good rows
    files: dict[str, pa.Schema] = {}  # uri → the file's own schema, as Spark reads it
    for file, frame, kept in good_files(settings, contract, window, screen, load):
        source = file if kept.height == frame.height else _stage(settings, file, kept, staging)
        files[source.uri] = _file_schema(settings, source, contract)
        read.append(source)
        if keys is not None and columns:
            keys[file.name] = kept.select(columns).unique()
    if not load.loaded:
        return session.createDataFrame([], spark_schema(arrow_schema(contract))), [], load
    frame = _ordered_rows(session, contract, read, files)
    return frame.drop("_mesh_file", "_mesh_file_rank", "_mesh_path"), list(load.loaded), load


def _stage(
    settings: MeshSettings, file: LandingFile, rows: pl.DataFrame, staging: str | None
) -> LandingFile:
    """A file's good rows as a Parquet file for executors to read instead of the file."""
    if staging is None:
        raise ValueError("screened rows on Spark need a staging folder")
    uri = f"{staging}/{file.name}.parquet"
    settings.files.write_parquet(uri, rows)
    return LandingFile(uri, file.day, file.signature)


def _ordered_rows(
    session: SparkSession,
    contract: Contract,
    files: list[LandingFile],
    schemas: dict[str, pa.Schema],
) -> DataFrame:
    """The files' rows with their file name and `_mesh_seq` (file order, then row order)."""
    frame = _read_files(session, contract, files, schemas)
    frame = frame.withColumn("_mesh_file", F.element_at(F.split("_mesh_path", "/"), -1))
    ranks = session.createDataFrame(
        [(f.name, i) for i, f in enumerate(files)], ["_mesh_file", "_mesh_file_rank"]
    )
    frame = frame.join(F.broadcast(ranks), "_mesh_file")
    return frame.withColumn(
        SEQUENCE, F.struct("_mesh_file_rank", F.monotonically_increasing_id().alias("row"))
    )


def _suffix(file: LandingFile) -> str:
    return "." + file.name.rsplit(".", 1)[-1].lower() if "." in file.name else ""


def _file_schema(settings: MeshSettings, file: LandingFile, contract: Contract) -> pa.Schema:
    """How Spark reads a validated file: a Parquet file with its footer's types (cast to
    the contract's afterwards, as the local engine does), a CSV file with its header's
    columns in the contract's types, JSON lines with the contract's schema."""
    contract_schema = arrow_schema(contract)
    suffix = _suffix(file)
    if suffix == ".parquet":
        footer = pq.read_schema(settings.files.path(file.uri), filesystem=settings.files.fs)
        return pa.schema([f for f in footer if f.name in contract.column_names])
    if suffix == ".csv":
        with settings.files.fs.open_input_stream(settings.files.path(file.uri)) as stream:
            first = stream.read(65536).decode("utf-8", errors="replace").splitlines()[0]
        header = next(csv.reader([first.lstrip("\ufeff")]))
        return pa.schema([contract_schema.field(c) for c in header])
    return contract_schema


def _read_files(
    session: SparkSession,
    contract: Contract,
    files: list[LandingFile],
    schemas: dict[str, pa.Schema],
) -> DataFrame:
    """One read per file format and schema (usually one in all), each cast to the
    contract's types; missing optional columns are null. `_mesh_path`: the file of each
    row (taken before the union, which drops the hidden `_metadata` column)."""
    target = arrow_schema(contract)
    groups: dict[tuple[str, pa.Schema], list[str]] = {}
    for f in files:
        kind = SPARK_READERS[_suffix(f)]
        groups.setdefault((kind, schemas[f.uri]), []).append(f.uri)
    frames = []
    for (kind, schema), uris in groups.items():
        reader = session.read.schema(spark_schema(schema))
        if kind != "parquet":  # validated already: a row Spark cannot parse fails the run
            reader = reader.option("mode", "FAILFAST")
        if kind == "csv":
            reader = reader.option("header", True)
        frame = reader.format(kind).load(uris)
        columns = [
            F.col(f.name).cast(spark_type(target.field(f.name).type)).alias(f.name) for f in schema
        ]
        frames.append(frame.select(*columns, F.col("_metadata.file_path").alias("_mesh_path")))
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other, allowMissingColumns=True)
    return frame
