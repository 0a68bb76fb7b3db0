"""Product assets whose rows are computed and written by Spark.

The asset is the local engine's asset (same key, contract, checks, partitions,
automation); only the rows' path differs: landing files (validated first by the local
engine's own code) or input tables are read by Spark, missing imputable values are
filled by the local engine's model, the transform's Spark version runs on executors, the
write goes through dagster_project.engines.spark. The contract rules, policies and
quality checks then run on what was written (the partition's rows read back, or the
whole table when it is not partitioned), exactly as on the local engine.
"""

import csv
from typing import TYPE_CHECKING, Any

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from dagster_project.checks.quality.config import flag_column, quality_config
from dagster_project.checks.quality.imputation import MAX_TRAINING_ROWS, SEED, Imputation, impute
from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings
from dagster_project.engines.spark import (
    SEQUENCE,
    read_delta,
    spark_schema,
    spark_type,
    write_delta,
)
from dagster_project.engines.spark import contract_arrow_schema as arrow_schema
from dagster_project.engines.spark_resource import SparkResource
from dagster_project.lake.landing import (
    LandingError,
    LandingFile,
    landing_files,
    quarantine,
    read_landing_file,
    record_loaded,
)
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import DateWindow, Lake
from dagster_project.products.builder import (
    Product,
    _window,
    is_partitioned,
    product_asset_kwargs,
    publish,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

GAP = "_mesh_gap"  # a row missing an imputable value

# Every format the local engine reads (ingestion.READERS), as Spark reads it.
SPARK_READERS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".ndjson": "json"}


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
    frame, imputations = impute_on_spark(frame, contract)
    written = write_delta(
        lake,
        contract,
        frame,
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
        imputations=imputations,
    )
    if loaded:
        record_loaded(lake.settings, contract, loaded)
    return result


def impute_on_spark(frame: "DataFrame", contract: Contract) -> tuple["DataFrame", list[Imputation]]:
    """The local engine's imputation (`quality.imputation.impute`, the same model and
    code) on a Spark DataFrame: the rows missing an imputable value and the training rows
    (every complete row up to MAX_TRAINING_ROWS, else a seeded sample of about that many)
    go to the driver in landing order, the missing rows come back filled and flagged; the
    other rows stay on the executors with their flags false. Up to MAX_TRAINING_ROWS
    complete rows the result is the local engine's, row for row."""
    from pyspark.sql import functions as F

    columns = tuple(c for c in quality_config(contract).imputable if c in frame.columns)
    if not columns:
        return frame, []
    gap = F.lit(False)
    for column in columns:
        gap = gap | F.col(column).isNull()
    frame = frame.withColumn(GAP, gap)
    counts = frame.agg(F.sum(F.col(GAP).cast("long")), F.count(F.lit(1))).first()
    gaps, rows = counts[0] or 0, counts[1]
    if not gaps:
        done = [Imputation(c, 0, "none", (), 0, 0.0) for c in columns]
        return _flagged(frame.drop(GAP), columns), done
    rest = _flagged(frame.filter(~F.col(GAP)).drop(GAP), columns)
    filled, imputations = _impute_on_driver(frame, contract, columns, rows - gaps)
    back = filled.filter(pl.col(GAP)).select(rest.columns).to_arrow()
    missing = frame.sparkSession.createDataFrame(back, schema=rest.schema)
    return rest.unionByName(missing), imputations


def _impute_on_driver(
    frame: "DataFrame", contract: Contract, columns: tuple[str, ...], complete: int
) -> tuple[pl.DataFrame, list[Imputation]]:
    from pyspark.sql import functions as F

    sampled = F.lit(True)
    if complete > MAX_TRAINING_ROWS:
        sampled = F.rand(SEED) < MAX_TRAINING_ROWS / complete
    order = [SEQUENCE] if SEQUENCE in frame.columns else contract.primary_key
    rows = frame.filter(F.col(GAP) | sampled).orderBy(*order).toArrow()
    return impute(contract, pl.from_arrow(rows), columns)


def _flagged(frame: "DataFrame", columns: tuple[str, ...]) -> "DataFrame":
    """`<column>_imputed` false where the value is present (kept where it was set)."""
    from pyspark.sql import functions as F

    for column in columns:
        flag = flag_column(column)
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
    from dagster_project.lake.storage import WriteResult

    info = lake.info(contract.key)
    return WriteResult(info.uri, info.version, contract.write_mode, 0, info.rows, {})


# -- landing ----------------------------------------------------------------------------
def read_landing(
    session: "SparkSession", settings: MeshSettings, contract: Contract, window: DateWindow | None
) -> tuple["DataFrame", list[LandingFile], dict[str, str]]:
    """The landing files' rows as one Spark DataFrame. Each file is first validated on the
    driver, one at a time, by the local engine's own code (`read_landing_file`: file type,
    parsing, columns, types, empty file, empty keys, rows of another day), so both engines
    quarantine the same files for the same reasons; executors then read the good files.
    On duplicate keys the later file (then the later row) wins."""
    quarantined: dict[str, str] = {}
    good: list[LandingFile] = []
    files: dict[str, pa.Schema] = {}  # uri → the file's own schema, as Spark reads it
    for file in landing_files(settings, contract, window):
        try:
            read_landing_file(settings, file, contract)  # rows are read again by executors
            files[file.uri] = _file_schema(settings, file, contract)
            good.append(file)
        except LandingError as exc:
            quarantine(settings, contract, file, str(exc))
            quarantined[file.name] = str(exc)
    if not good:
        return session.createDataFrame([], spark_schema(arrow_schema(contract))), [], quarantined
    frame = _ordered_rows(session, contract, good, files)
    return frame.drop("_mesh_file", "_mesh_file_rank", "_mesh_path"), good, quarantined


def _ordered_rows(
    session: "SparkSession",
    contract: Contract,
    files: list[LandingFile],
    schemas: dict[str, pa.Schema],
) -> "DataFrame":
    """The files' rows with their file name and `_mesh_seq` (file order, then row order)."""
    from pyspark.sql import functions as F

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
        footer = pq.read_schema(settings.fs_path(file.uri), filesystem=settings.fs)
        return pa.schema([f for f in footer if f.name in contract.column_names])
    if suffix == ".csv":
        with settings.fs.open_input_stream(settings.fs_path(file.uri)) as stream:
            first = stream.read(65536).decode("utf-8", errors="replace").splitlines()[0]
        header = next(csv.reader([first.lstrip("\ufeff")]))
        return pa.schema([contract_schema.field(c) for c in header])
    return contract_schema


def _read_files(
    session: "SparkSession",
    contract: Contract,
    files: list[LandingFile],
    schemas: dict[str, pa.Schema],
) -> "DataFrame":
    """One read per file format and schema (usually one in all), each cast to the
    contract's types; missing optional columns are null. `_mesh_path`: the file of each
    row (taken before the union, which drops the hidden `_metadata` column)."""
    from pyspark.sql import functions as F

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
