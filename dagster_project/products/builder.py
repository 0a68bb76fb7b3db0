"""The product factory: an ODCS contract plus a transform becomes a Dagster asset.

The asset carries the contract's description, owner, tags, kinds, column schema and
freshness policy; each run writes the Delta table through the lake API, reports row
count, Delta version and table URI, and evaluates the contract rules (blocking
checks) and the mesh's policies (checks) on what it wrote.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import dagster as dg
import polars as pl

from dagster_project.checks.policies import (
    ContractRegistry,
    evaluate_policies,
    policy_check_results,
    policy_check_specs,
)
from dagster_project.checks.quality.checks import (
    evaluate_quality,
    impute_missing,
    quality_check_specs,
)
from dagster_project.checks.quality.imputation import Imputation
from dagster_project.checks.rules import check_results, contract_check_specs, evaluate_rules
from dagster_project.core.contracts import Contract
from dagster_project.core.settings import PARTITION_START
from dagster_project.lake.landing import LandingLoad, load_landing, record_loaded
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import DateWindow, Lake, WriteResult

Transform = Callable[..., pl.LazyFrame | pl.DataFrame]
RunKwargs = Callable[[dg.AssetExecutionContext, Lake, Contract], dict[str, Any]]

POLICY_SAMPLE = 500  # rows of a write that data-aware policies (PII by values) look at
DAILY = dg.DailyPartitionsDefinition(start_date=PARTITION_START.isoformat(), end_offset=1)


@dataclass(frozen=True)
class Product:
    """How a domain builds one of its products.

    `transform=None` loads the product from its landing folder; otherwise the transform
    receives its `inputs` (keys `domain/product`) as polars LazyFrames, in order, and
    returns the product's rows. `cron` adds a schedule that refreshes the product.
    `spark` is the same transform on Spark DataFrames, used where the contract (or
    `MESH_ENGINE_<DOMAIN>`) says `engine: spark` (dagster_project/engines). `run_kwargs`
    gives the transform keyword arguments from the run (e.g. `narratives.insights`: the
    instance's check outcomes and the mesh home to write the report to)."""

    name: str
    transform: Transform | None = None
    inputs: tuple[str, ...] = ()
    cron: str | None = None
    spark: Callable[..., Any] | None = None
    run_kwargs: RunKwargs | None = None

    @property
    def from_landing(self) -> bool:
        return self.transform is None


def landing(name: str, *, cron: str | None = None) -> Product:
    """A product loaded from `MESH_HOME/landing/<domain>/<name>/`."""
    return Product(name, cron=cron)


def derived(
    name: str,
    transform: Transform,
    *inputs: str,
    cron: str | None = None,
    spark: Callable[..., Any] | None = None,
) -> Product:
    """A product computed from other products (`domain/product` keys); `spark`: the
    transform's Spark version, for when the product runs on the Spark engine."""
    return Product(name, transform=transform, inputs=tuple(inputs), cron=cron, spark=spark)


def asset_key(key: str) -> dg.AssetKey:
    return dg.AssetKey(key.split("/"))


def is_partitioned(contract: Contract) -> bool:
    return contract.write_mode == "partition_overwrite"


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
    unpartitioned product does not wait for days that were never landed."""
    if product.from_landing:
        return None
    condition = dg.AutomationCondition.eager().without(
        dg.AutomationCondition.in_latest_time_window()
    )
    if not partitioned:
        condition = condition.without(~dg.AutomationCondition.any_deps_missing())
    return (condition & dg.AutomationCondition.all_deps_blocking_checks_passed()).with_label(
        "eager (all history, blocking checks passed)"
    )


def freshness_policy(contract: Contract) -> dg.FreshnessPolicy | None:
    sla = contract.freshness
    return dg.FreshnessPolicy.time_window(fail_window=sla.max_age) if sla else None


def product_asset_kwargs(contract: Contract, product: Product | None = None) -> dict[str, Any]:
    """The `@dg.asset` arguments every product shares: identity, docs, ownership, schema,
    partitions, automation, freshness and the contract and policy checks."""
    key = asset_key(contract.key)
    partitioned = is_partitioned(contract)
    # A custom asset built on a contract (governance's) refreshes like a derived product.
    product = product or Product(contract.product, transform=lambda: None)
    return dict(
        key=key,
        description=contract.description,
        deps=[asset_key(i) for i in product.inputs],
        metadata={
            "dagster/column_schema": column_schema(contract),
            "contract": dg.MetadataValue.path(str(contract.path)) if contract.path else "",
            "contract_version": contract.version,
            "write_mode": contract.write_mode,
            "primary_key": ", ".join(contract.primary_key),
            **({"usage": contract.usage} if contract.usage else {}),
        },
        tags={"domain": contract.domain, **{t: "" for t in contract.tags[:5]}},
        kinds={"delta", "polars"},
        owners=_owners(contract),
        group_name=contract.domain,
        code_version=contract.version,
        partitions_def=DAILY if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        automation_condition=default_automation(product, partitioned),
        freshness_policy=freshness_policy(contract),
        check_specs=contract_check_specs(contract, key)
        + policy_check_specs(key)
        + quality_check_specs(contract, key),  # anomalies, drift (WARN) where switched on
        # One writer per product at a time (with `concurrency.pools.default_limit: 1`):
        # a sensor run and a manual run must not race on the same Delta table.
        pool=f"mesh/{contract.key}",
    )


def check_keys(contract: Contract) -> list[dg.AssetCheckKey]:
    """The keys of every check a product's asset evaluates."""
    return [spec.key for spec in product_asset_kwargs(contract)["check_specs"]]


def build_product_asset(contract: Contract, product: Product) -> dg.AssetsDefinition:
    """The Dagster asset for one product."""
    from dagster_project.engines import engine_for  # the engine is the contract's choice

    # A domain-wide switch (MESH_ENGINE_<DOMAIN>) moves the products that have a Spark
    # implementation; one whose contract asks for Spark without it still fails loudly.
    runs_on_spark = product.from_landing or product.spark is not None
    if engine_for(contract) == "spark" and (runs_on_spark or contract.custom("engine")):
        from dagster_project.products.spark import build_spark_product_asset

        return build_spark_product_asset(contract, product)
    partitioned = is_partitioned(contract)

    @dg.asset(**product_asset_kwargs(contract, product))
    def _product(context: dg.AssetExecutionContext, mesh: MeshResource) -> dg.MaterializeResult:
        window = _window(context) if partitioned else None
        return materialize_product(context, mesh.lake, contract, product, window)

    return _product


def _window(context: dg.AssetExecutionContext) -> DateWindow:
    tw = context.partition_time_window
    return DateWindow(tw.start.date(), (tw.end - timedelta(days=1)).date())


def compute_rows(
    lake: Lake,
    contract: Contract,
    product: Product,
    window: DateWindow | None,
    kwargs: dict[str, Any] | None = None,
) -> tuple[pl.DataFrame, LandingLoad | None]:
    """The product's new rows: from landing, or by running the transform on its inputs
    (and `kwargs`)."""
    if product.from_landing:
        load = load_landing(lake.settings, contract, window)
        return load.frame, load
    inputs = [_read_input(lake, key, window) for key in product.inputs]
    result = product.transform(*inputs, **(kwargs or {}))
    return (result.collect() if isinstance(result, pl.LazyFrame) else result), None


def _read_input(lake: Lake, key: str, window: DateWindow | None) -> pl.LazyFrame:
    if not lake.exists(key):
        raise dg.Failure(f"input {key} has not been materialized yet")
    part = lake.partition_columns(key)
    if window is not None and part:
        return lake.scan(key, window=window, column=part[0])
    return lake.scan(key)


def materialize_product(
    context: dg.AssetExecutionContext,
    lake: Lake,
    contract: Contract,
    product: Product,
    window: DateWindow | None,
) -> dg.MaterializeResult:
    """Compute, write and check one product; the body of every product asset."""
    kwargs = product.run_kwargs(context, lake, contract) if product.run_kwargs else None
    frame, load = compute_rows(lake, contract, product, window, kwargs)
    extra: dict[str, Any] = {}
    if load is not None:
        extra["loaded_files"] = dg.MetadataValue.json([f.name for f in load.loaded])
        if load.quarantined:
            extra["quarantined"] = dg.MetadataValue.json(load.quarantined)
            for name, reason in load.quarantined.items():
                context.log.warning(f"quarantined {contract.key} file {name}: {reason}")
        if not load.loaded and not lake.exists(contract.key):
            raise dg.Failure(
                f"no loadable landing files for {contract.key}",
                metadata={"quarantined": dg.MetadataValue.json(load.quarantined)},
            )
    result = publish(context, lake, contract, frame, window=window, extra=extra)
    if load is not None:
        record_loaded(lake.settings, contract, load.loaded)
    return result


def publish(
    context: dg.AssetExecutionContext,
    lake: Lake,
    contract: Contract,
    frame: pl.DataFrame,
    *,
    window: DateWindow | None = None,
    extra: dict[str, Any] | None = None,
    written: WriteResult | None = None,
    imputations: list[Imputation] | None = None,
) -> dg.MaterializeResult:
    """Write a product's rows, evaluate its contract rules and the mesh's policies, and
    return the materialization with its metadata and check results. `written`: the rows
    were already written (by another engine, which filled `imputations`); `frame` is what
    the checks look at."""
    key = asset_key(contract.key)
    imputations = list(imputations or [])
    if written is None:
        skip = frame.is_empty() and contract.write_mode in {"merge", "append"}
        frame, imputations = impute_missing(contract, frame)
        written = _write(lake, contract, frame, window, context.run_id, skip=skip)
    info = lake.info(contract.key)
    outcomes = evaluate_rules(
        contract, frame, lake, table_rows=info.rows, table_columns=lake.column_types(contract.key)
    )
    registry = ContractRegistry(lake.settings)
    policies = evaluate_policies(contract, registry.latest(contract.key), frame.head(POLICY_SAMPLE))
    if policies.get("breaking_change") is None or policies["breaking_change"].passed:
        registry.publish(contract)
    metadata = {
        "dagster/row_count": info.rows,
        "dagster/uri": info.uri,
        "dagster/table_name": contract.key.replace("/", "."),
        "delta_version": info.version,
        "table_uri": dg.MetadataValue.path(info.uri),
        "rows_written": written.rows_written if written else 0,
        "write_mode": contract.write_mode,
        "owner": contract.owner or "",
        "dagster/column_schema": column_schema(contract),
        **({"window": f"{window.start} .. {window.end}"} if window else {}),
        **(extra or {}),
    }
    if window is not None:
        metadata["dagster/partition_row_count"] = frame.height
    quality = evaluate_quality(
        context,
        lake,
        contract,
        frame,
        window=window,
        outcomes=outcomes,
        info=info,
        imputations=imputations,
    )  # anomalies, drift, quality score (dagster_project/quality)
    metadata.update(quality.metadata)
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=check_results(contract, outcomes, key)
        + policy_check_results(policies, key)
        + quality.check_results,
    )


def _write(
    lake: Lake,
    contract: Contract,
    frame: pl.DataFrame,
    window: DateWindow | None,
    run_id: str,
    *,
    skip: bool,
) -> WriteResult | None:
    if skip and lake.exists(contract.key):
        return None
    return lake.write(contract, frame, window=window, commit_metadata={"dagster.run_id": run_id})
