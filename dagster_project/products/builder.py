"""The one product builder: a contract plus a `Product` becomes a Dagster asset.

The asset carries the contract's description, owner, tags, kinds, column schema and
freshness policy; each run computes the rows (landing files, a transform, a build, or
Spark), writes the Delta table through the lake API, reports row count, Delta version
and table URI, and has every check family it was given judge what it wrote. Before
anything is written the families screen the rows: a landing file's rows breaking a
blocking rule are quarantined (the file, or those rows), and any left after `prepare`
fail the run, so no such row is ever visible in the product.
"""

import time
import warnings
from collections.abc import Sequence
from datetime import date
from typing import Any

import dagster as dg
import polars as pl

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import PARTITION_START
from dagster_project.engines import engine_for, spark_refusal
from dagster_project.lake.landing import load_landing
from dagster_project.lake.lineage import record_load, retracted_keys
from dagster_project.lake.storage import DateWindow
from dagster_project.products.partitions import daily_partitions
from dagster_project.products.product import (
    CheckFamily,
    Product,
    ProductRun,
    Rows,
    Written,
    asset_key,
    check_specs,
    is_partitioned,
    partition_window,
    screen_of,
)
from dagster_project.products.refusal import refuse_before_write

# Tag of the assets whose rows come from landing files (a refresh skips those with none).
SOURCE_TAG = "mesh/source"


def column_schema(contract: Contract) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=c.logical_type,
                description=c.description or None,
                constraints=dg.TableColumnConstraints(nullable=not c.required, unique=c.unique),
                tags={"classification": c.classification} if c.classification else {},
            )
            for c in contract.columns
        ]
    )


def _owners(contract: Contract) -> list[str]:
    owner = contract.owner
    if not owner:
        return []
    return [owner if "@" in owner else f"team:{owner}"]


def default_automation(product: Product, partitioned: bool) -> dg.AutomationCondition | None:
    """Derived products refresh when an input updates, once its blocking checks pass.

    Unlike plain `eager()`, history counts too (not only the latest day), and an
    unpartitioned product does not wait for days that were never landed. An unpartitioned
    product also waits while an input's own inputs just updated: that input is about to
    refresh in a run of its own (a daily run cannot include it), and without the wait it
    would publish from the input's previous state (the catalog listing yesterday's daily
    sales). Dagster's `will_be_requested` does not see requests outside its own run;
    the latched trigger fires once the input is done (`any_deps_in_progress` holds it
    meanwhile). An input updated in the same tick as its own inputs (a landing run that
    also built the derived day, assembly.locations.followers) is not about to refresh:
    no wait then. Blocking checks are those of the inputs that exist: an input never
    built (a domain with nothing landed yet) has no check results, and Dagster's
    `all_deps_blocking_checks_passed` would then hold the catalog back for ever."""
    if product.from_landing:
        return None
    condition = dg.AutomationCondition.eager().without(
        dg.AutomationCondition.in_latest_time_window()
    )
    label = "eager (all history, blocking checks passed)"
    if not partitioned:
        condition = condition.without(~dg.AutomationCondition.any_deps_missing())
        inputs_updated = dg.AutomationCondition.any_deps_match(
            dg.AutomationCondition.newly_updated()
        )
        refreshing = inputs_updated & ~dg.AutomationCondition.newly_updated()
        waiting = dg.AutomationCondition.any_deps_match(refreshing)
        condition = condition & ~waiting.with_label("any_deps_about_to_refresh")
        label = "eager (all history, blocking checks passed, after its inputs)"
    return (condition & _inputs_blocking_checks_passed()).with_label(label)


def _inputs_blocking_checks_passed() -> dg.AutomationCondition:
    """Every input that exists has passed (or is about to run) its blocking checks."""
    passed = dg.AutomationCondition.all_checks_match(
        dg.AutomationCondition.check_passed() | dg.AutomationCondition.will_be_requested(),
        blocking_only=True,
    )
    return dg.AutomationCondition.all_deps_match(
        passed | dg.AutomationCondition.missing()
    ).with_label("all_deps_blocking_checks_passed")


def freshness_policy(contract: Contract) -> dg.FreshnessPolicy | None:
    sla = contract.freshness
    return dg.FreshnessPolicy.time_window(fail_window=sla.max_age) if sla else None


def asset_kwargs(
    contract: Contract,
    product: Product,
    families: Sequence[CheckFamily],
    start: date | None = None,
) -> dict[str, Any]:
    """The `@dg.asset` arguments of a product: identity, docs, ownership, schema,
    partitions (daily from `start`, else the contract's or the default start),
    automation, freshness and its families' checks."""
    partitioned = is_partitioned(contract)
    first = start or contract.partition_start or PARTITION_START
    return dict(
        key=asset_key(contract.key),
        description=product.description or contract.description,
        deps=[asset_key(i) for i in product.inputs],
        metadata={
            "dagster/column_schema": column_schema(contract),
            "contract": dg.MetadataValue.path(str(contract.path)) if contract.path else "",
            "contract_version": contract.version,
            "write_mode": contract.write_mode,
            "primary_key": ", ".join(contract.primary_key),
            "product_kind": product.kind,
            **({"usage": contract.usage} if contract.usage else {}),
        },
        tags={
            "domain": contract.domain,
            **({SOURCE_TAG: "landing"} if product.from_landing else {}),
            **{t: "" for t in contract.tags[:5]},
        },
        kinds={"delta", "polars", *product.kinds},
        owners=_owners(contract),
        group_name=contract.domain,
        code_version=contract.version,
        partitions_def=daily_partitions(first) if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        automation_condition=default_automation(product, partitioned),
        freshness_policy=freshness_policy(contract),
        check_specs=check_specs(families, contract),
        # One writer per product at a time (with `concurrency.pools.default_limit: 1`):
        # a sensor run and a manual run must not race on the same Delta table.
        pool=f"mesh/{contract.key}",
    )


def build_product_asset(
    contract: Contract,
    product: Product,
    families: Sequence[CheckFamily],
    start: date | None = None,
) -> dg.AssetsDefinition:
    """The Dagster asset for one product, its checks those of `families`, its daily
    partitions (if any) from `start` (see products.partitions)."""
    # A domain-wide switch (MESH_ENGINE_<DOMAIN>) moves the products that have a Spark
    # implementation; one whose contract asks for Spark without it still fails loudly.
    runs_on_spark = product.from_landing or product.spark is not None
    on_spark = engine_for(contract) == "spark" and (runs_on_spark or contract.custom("engine"))
    if on_spark and not product.from_landing and product.spark is None:
        raise ValueError(f"{contract.key} runs on Spark but its product has no `spark=` transform")
    if on_spark and spark_refusal(contract):
        raise ValueError(spark_refusal(contract))
    kwargs = asset_kwargs(contract, product, families, start)
    if on_spark:
        kwargs["kinds"] = {"delta", "spark"}
    partitioned = is_partitioned(contract)
    resources = {"mesh", *product.resources, *(["spark"] if on_spark else [])}

    def _product(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        window = partition_window(context) if partitioned else None
        run = ProductRun(context, context.resources.mesh.lake, contract, window)
        if on_spark:
            rows = _rows_on_spark(run, product, families)
        else:
            rows = compute_rows(run, product, families)
        return publish(run, rows, families)

    with warnings.catch_warnings():
        # Single-run backfills (a daily product backfills in one run) are beta in Dagster
        # 1.13: chosen on purpose, so the warning would only tell every loader what we know.
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.asset(**kwargs, required_resource_keys=resources)(_product)


def _rows_on_spark(run: ProductRun, product: Product, families: Sequence[CheckFamily]) -> Rows:
    from dagster_project.products.spark import rows_on_spark  # imports pyspark

    return rows_on_spark(run, product, families)


def compute_rows(run: ProductRun, product: Product, families: Sequence[CheckFamily] = ()) -> Rows:
    """The product's new rows: from landing (each file screened by `families`), its
    transform on its inputs, or its build."""
    if product.build is not None:
        built = product.build(run)
        return built if isinstance(built, Rows) else Rows(built)
    if product.from_landing:
        return _landed_rows(run, families)
    result = product.transform(*[run.scan(key) for key in product.inputs])
    return Rows(result.collect() if isinstance(result, pl.LazyFrame) else result)


def _landed_rows(run: ProductRun, families: Sequence[CheckFamily]) -> Rows:
    lake, contract = run.lake, run.contract
    screen = screen_of(families, lake, before_prepare=True)
    load = load_landing(lake.settings, contract, run.window, screen=screen)
    loaded = [f.name for f in load.loaded]
    metadata: dict[str, Any] = {"loaded_files": dg.MetadataValue.json(loaded)}
    for label, files, verb in [
        ("quarantined", load.quarantined, "quarantined"),
        ("rows_quarantined", load.rows_quarantined, "set rows aside from"),
        ("unsettled", load.unsettled, "left for later (may still be written)"),
        ("replays", load.replays, "skipped"),
    ]:
        if files:
            metadata[label] = dg.MetadataValue.json(files)
        for name, reason in files.items():
            run.log.warning(f"{contract.key}: {verb} {name}: {reason}")
    refusal = load.refusal(contract, table_exists=lake.exists(contract.key))
    if refusal:
        raise dg.Failure(
            refusal, metadata={k: v for k, v in metadata.items() if k != "loaded_files"}
        )
    return Rows(
        load.frame,
        metadata,
        after_publish=lambda: record_load(lake.settings, contract, load),
        retract=retracted_keys(lake.settings, contract, load),
        days=load.replaced_days(contract, run.window),
    )


def _kept_days(days: frozenset | None, window: DateWindow | None) -> bool:
    """Whether some days of the window were not replaced (their rows are the table's)."""
    return days is not None and window is not None and len(days) <= (window.end - window.start).days


def publish(run: ProductRun, rows: Rows, families: Sequence[CheckFamily]) -> dg.MaterializeResult:
    """Write a product's rows (unless already written), have every check family judge
    them, and return the materialization with its metadata and check results."""
    lake, contract, window = run.lake, run.contract, run.window
    frame, imputations, rows_written = rows.frame, list(rows.imputations), rows.rows_written
    retracted = 0
    seconds = dict.fromkeys((type(f).__name__ for f in families), 0.0)
    if not rows.written:
        for family in families:  # before the write: e.g. imputation
            started = time.perf_counter()
            frame, changes = family.prepare(contract, frame)
            seconds[type(family).__name__] += time.perf_counter() - started
            imputations += changes
        refuse_before_write(run, frame, families)
        nothing = frame.is_empty() and (rows.retract is None or rows.retract.is_empty())
        skip = nothing and contract.write_mode in {"merge", "append"}
        if not (skip and lake.exists(contract.key)):
            commit = {"dagster.run_id": run.context.run_id}
            result = lake.write(
                contract,
                frame,
                window=window,
                days=rows.days,
                commit_metadata=commit,
                retract=rows.retract,
            )
            rows_written, retracted = result.rows_written, result.rows_retracted
            frame = result.frame  # the checks judge the rows as written: one per key
        if _kept_days(rows.days, window) and lake.exists(contract.key):
            frame = lake.read(contract.key, window=window, column=contract.partition_column)
    info = lake.info(contract.key)
    metadata = {
        "dagster/row_count": info.rows,
        "dagster/uri": info.uri,
        "dagster/table_name": contract.key.replace("/", "."),
        "delta_version": info.version,
        "table_uri": dg.MetadataValue.path(info.uri),
        "rows_written": rows_written,
        **({"rows_retracted": retracted} if retracted else {}),
        "write_mode": contract.write_mode,
        "owner": contract.owner or "",
        "dagster/column_schema": column_schema(contract),
        **({"window": f"{window.start} .. {window.end}"} if window else {}),
        **rows.metadata,
    }
    if window is not None:
        metadata["dagster/partition_row_count"] = frame.height
    written = Written(run.context, lake, contract, frame, window, info, imputations)
    checks: list[dg.AssetCheckResult] = []
    for family in families:
        started = time.perf_counter()
        result = family.evaluate(written)
        seconds[type(family).__name__] += time.perf_counter() - started
        checks += result.check_results
        metadata.update(result.metadata)
    if rows.after_publish is not None:
        rows.after_publish()
    # Where a product's time goes, per check family (bench/refresh.py reads it back).
    metadata["family_seconds"] = {name: round(s, 4) for name, s in seconds.items()}
    return dg.MaterializeResult(metadata=metadata, check_results=checks)
