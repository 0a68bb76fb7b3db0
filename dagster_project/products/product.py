"""What a product is: its definition (`Product`), a run of it, its rows, and the interface
every check family implements.

A domain declares products; `assembly` turns each into one Dagster asset with
`products.builder`, handing it the check families of `checks` (they sit above this layer,
so the builder knows them only through the `CheckFamily` protocol below).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import dagster as dg
import polars as pl

from dagster_project.core.contracts import Contract
from dagster_project.lake.screening import Screen, Violation
from dagster_project.lake.storage import DateWindow, Lake, TableInfo

Transform = Callable[..., pl.LazyFrame | pl.DataFrame]


@dataclass(frozen=True)
class Product:
    """How a domain builds one of its products.

    Rows come from one of three places: the landing folder (no `transform`, no `build`);
    `transform(*inputs)` on the `inputs` (keys `domain/product`) as polars LazyFrames;
    or `build(run)`, which gets the running `ProductRun` (context, lake, window,
    resources) and returns the rows (a DataFrame or `Rows`). `inputs` are the asset's
    dependencies either way. `contract` is for generated products (companions, shared
    copies, synthetic data) whose contract is not a file of the domain. `resources`
    names the extra Dagster resources `build` uses; `kinds` adds to the UI's kinds;
    `cron` adds a schedule; `spark` is the transform's Spark version (dagster_project/engines)."""

    name: str
    transform: Transform | None = None
    inputs: tuple[str, ...] = ()
    cron: str | None = None
    spark: Callable[..., Any] | None = None
    build: Callable[[ProductRun], pl.DataFrame | Rows] | None = None
    contract: Contract | None = None
    resources: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    description: str | None = None

    @property
    def from_landing(self) -> bool:
        return self.transform is None and self.build is None

    @property
    def kind(self) -> str:
        """Where its rows come from: landing, derived (a transform) or built (a build)."""
        return "landing" if self.from_landing else "derived" if self.transform else "built"


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


def qualified(keys: Sequence[str], domain: str) -> tuple[str, ...]:
    """Product keys with the domain made explicit: `product` is the domain's own."""
    return tuple(key if "/" in key else f"{domain}/{key}" for key in keys)


def is_partitioned(contract: Contract) -> bool:
    """Daily partitions: a partition column and a write mode that keeps the other days
    (merge, append, partition overwrite; a full overwrite replaces all days at once)."""
    return contract.partition_column is not None and contract.write_mode != "overwrite"


def partition_window(context: dg.AssetExecutionContext) -> DateWindow:
    """The days of the run's partition range (both ends included)."""
    span = context.partition_time_window
    return DateWindow(span.start.date(), (span.end - timedelta(days=1)).date())


@dataclass
class ProductRun:
    """One materialization of a product: what its build sees."""

    context: dg.AssetExecutionContext
    lake: Lake
    contract: Contract
    window: DateWindow | None

    @property
    def log(self) -> Any:
        return self.context.log

    def resource(self, name: str) -> Any:
        return getattr(self.context.resources, name)

    def scan(self, key: str) -> pl.LazyFrame:
        """An input product's rows (only the run's days where the input is partitioned);
        fails the run clearly when it was never built."""
        if not self.lake.exists(key):
            raise dg.Failure(f"input {key} has not been materialized yet")
        part = self.lake.day_column(key)
        if self.window is not None and part:
            return self.lake.scan(key, window=self.window, column=part)
        return self.lake.scan(key)

    def read(self, key: str) -> pl.DataFrame:
        """An input product's whole table; fails the run clearly when it was never built."""
        if not self.lake.exists(key):
            raise dg.Failure(f"input {key} has not been materialized yet")
        return self.lake.read(key)


@dataclass
class Rows:
    """A build's result: the rows to publish and what the materialization reports.

    `frame` is what is written (the checks judge it as written: one row per key).
    `written` says another path already wrote the rows (Spark, a compaction:
    `rows_written` of them, with the `imputations` it made); `retract` holds keys to
    delete in the same commit (rows a corrected landing file no longer carries); `days`
    (partition overwrite) the only days of the run to replace, those with a good landing
    file (a day whose every file was quarantined keeps its rows); `after_publish` runs
    once the rows and checks are recorded."""

    frame: pl.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)
    written: bool = False
    rows_written: int = 0
    imputations: list[Any] = field(default_factory=list)
    after_publish: Callable[[], None] | None = None
    retract: pl.DataFrame | None = None
    days: frozenset[date] | None = None


@dataclass
class Written:
    """What the check families see after a product's write; `findings` lets a family
    build on an earlier one's results (the quality score on the contract rules)."""

    context: dg.AssetExecutionContext | None
    lake: Lake
    contract: Contract
    frame: pl.DataFrame
    window: DateWindow | None
    info: TableInfo | None
    imputations: list[Any]
    findings: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> dg.AssetKey:
        return asset_key(self.contract.key)


@dataclass
class FamilyResult:
    check_results: list[dg.AssetCheckResult] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


class CheckFamily:
    """One kind of check (contract rules, shared policies, quality detectors, drift...):
    the interface every family implements, each method a no-op until a family needs it.

    `specs` declares the asset checks a product gets; `screen` returns the rows of a
    frame breaking a blocking row-level rule, before anything is written (each landing
    file, then the whole frame); `prepare` (or `prepare_spark` on the Spark engine) may
    change the rows before they are written, returning what it changed (e.g.
    imputation), and `fills` names the columns whose missing values it fills (a landing
    file is not screened for nulls there); `evaluate` judges what was written."""

    name = "checks"

    def specs(self, contract: Contract, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
        return []

    def screen(self, contract: Contract, frame: pl.DataFrame, lake: Lake) -> list[Violation]:
        return []

    def fills(self, contract: Contract) -> set[str]:
        return set()

    def prepare(self, contract: Contract, frame: pl.DataFrame) -> tuple[pl.DataFrame, list]:
        return frame, []

    def prepare_spark(self, contract: Contract, frame: Any) -> tuple[Any, list]:
        return frame, []

    def evaluate(self, written: Written) -> FamilyResult:
        return FamilyResult()


def screen_of(
    families: Sequence[CheckFamily], lake: Lake, *, before_prepare: bool = False
) -> Screen:
    """Every family's screen as one, judging against `lake` (a foreign key's parent);
    `before_prepare`: leave out nulls that a family's `prepare` fills (imputable
    columns), as a landing file is screened before it."""

    def screen(contract: Contract, frame: pl.DataFrame) -> list[Violation]:
        filled = {c for f in families for c in f.fills(contract)} if before_prepare else set()
        found = [v for f in families for v in f.screen(contract, frame, lake)]
        return [v for v in found if not (v.rule == "not_null" and v.column in filled)]

    return screen


def check_specs(families: Sequence[CheckFamily], contract: Contract) -> list[dg.AssetCheckSpec]:
    key = asset_key(contract.key)
    return [spec for family in families for spec in family.specs(contract, key)]
