"""Semantic queries compiled to DuckDB SQL, deterministically.

A `SemanticQuery` names metrics, dimensions, filters, a time grain and range, an order
and a limit — never SQL. The compiler resolves dimensions and joins through the
semantic layer (many-to-one only, so rows never fan out), groups metrics by the model
they aggregate (one CTE each, joined on the shared dimensions), and returns one
read-only SELECT. The same query always compiles to the same text.

Tables are addressed as `<domain>.<product>`; `connect(lake, products)` registers the
products' Delta tables under those names in a DuckDB connection. Connections come from
a `DuckDBConnections`: dagster-duckdb's `DuckDBResource` in long-lived processes (the
API server, Dagster runs), `IN_MEMORY` - the same in-memory database per connection,
without importing Dagster - in short commands such as `mesh ask`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Protocol

import duckdb
import polars as pl
import sqlglot
from sqlglot import exp

from dagster_project.lake.storage import Lake
from dagster_project.metadata.semantics import (
    TIME_GRAINS,
    Dimension,
    JoinStep,
    Metric,
    SemanticLayer,
)

OPERATORS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "in": "IN"}
OPERATORS["not in"] = "NOT IN"
_AGG_SQL = {
    "sum": "SUM({})",
    "avg": "AVG({})",
    "min": "MIN({})",
    "max": "MAX({})",
    "count": "COUNT({})",
    "count_distinct": "COUNT(DISTINCT {})",
}


class SemanticQueryError(ValueError):
    """A query the semantic layer cannot answer, with the reason."""


@dataclass(frozen=True)
class Filter:
    """`dimension <op> value` on each row. With `metric`, `dimension` is that metric's own
    column (not a declared dimension), compared on each row of the metric's model before
    aggregation: "flights with a departure delay over 60" counts the rows that pass."""

    dimension: str
    op: str
    value: Any
    metric: str | None = None


@dataclass(frozen=True)
class OrderBy:
    name: str
    descending: bool = False


@dataclass(frozen=True)
class SemanticQuery:
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    time_grain: str | None = None
    start: date | None = None  # inclusive, on each model's time dimension
    end: date | None = None  # inclusive
    order_by: tuple[OrderBy, ...] = ()
    limit: int | None = None
    having: tuple[Filter, ...] = ()  # on output metrics, after aggregation

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SemanticQuery:
        """From plain data (e.g. a model's JSON): filters as `{dimension, op, value}`,
        order as `{name, descending}` or `"-revenue"`; dates as ISO strings."""
        order = []
        for o in raw.get("order_by") or []:
            if isinstance(o, str):
                order.append(OrderBy(o.lstrip("-"), o.startswith("-")))
            else:
                order.append(OrderBy(o["name"], bool(o.get("descending"))))
        return cls(
            metrics=tuple(raw.get("metrics") or ()),
            dimensions=tuple(raw.get("dimensions") or ()),
            filters=_filters(raw.get("filters")),
            having=_filters(raw.get("having")),
            time_grain=raw.get("time_grain"),
            start=_as_date(raw.get("start")),
            end=_as_date(raw.get("end")),
            order_by=tuple(order),
            limit=raw.get("limit"),
        )


@dataclass(frozen=True)
class CompiledQuery:
    sql: str
    products: tuple[str, ...]  # `domain/product` keys the SQL reads
    columns: tuple[str, ...]  # output columns, in order


@dataclass
class _Group:
    """Metrics that aggregate one model in one pass."""

    product: str
    non_additive: str | None
    metrics: list[Metric] = field(default_factory=list)


def _filters(raw: Any) -> tuple[Filter, ...]:
    return tuple(
        Filter(f["dimension"], f.get("op", "="), f["value"], f.get("metric")) for f in raw or []
    )


def ratio_parts(name: str) -> tuple[str, str] | None:
    """`units_sold/orders` → (`units_sold`, `orders`): a ratio of two metrics asked for
    on the fly, computed after each is aggregated (so across models too)."""
    numerator, slash, denominator = name.partition("/")
    return (numerator, denominator) if slash and numerator and denominator else None


def with_derived_metrics(layer: SemanticLayer) -> SemanticLayer:
    """The layer plus distinct counts it implies: of each text dimension
    (`distinct_brand`) and of each entity key in every model that holds it
    (`distinct_customer_id_in_order_lines`), unless the layer already counts it there."""
    counted = {(m.product, m.column) for m in layer.metrics.values() if m.agg == "count_distinct"}
    derived: dict[str, Metric] = {}
    for dim in layer.list_dimensions():
        kind = layer.contracts[dim.product].column(dim.column).logical_type
        if not dim.is_time and kind == "string" and (dim.product, dim.column) not in counted:
            derived[f"distinct_{dim.name}"] = Metric(
                f"distinct_{dim.name}",
                dim.product,
                "count_distinct",
                dim.column,
                label=f"Distinct {dim.name.replace('_', ' ')}",
                domain=dim.product.split("/")[0],
            )
    for product in sorted(layer.models):
        contract = layer.contracts.get(product)
        for entity in layer.entities.values():
            if contract is None or entity.key not in contract.column_names:
                continue
            if (product, entity.key) in counted:
                continue
            name = f"distinct_{entity.key}_in_{product.split('/')[1]}"
            derived[name] = Metric(
                name,
                product,
                "count_distinct",
                entity.key,
                label=f"Distinct {entity.name}s",
                domain=product.split("/")[0],
            )
    derived = {k: v for k, v in derived.items() if k not in layer.metrics}
    return replace(layer, metrics={**layer.metrics, **derived})


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _alias(product: str) -> str:
    return product.replace("/", "__")


def _table(product: str) -> str:
    domain, name = product.split("/")
    return f'"{domain}"."{name}"'


def literal(value: Any, logical_type: str) -> str:
    """A SQL literal of the column's type; strings are quoted, never spliced."""
    if value is None:
        return "NULL"
    if logical_type == "boolean":
        if isinstance(value, str):
            value = value.strip().lower() in {"true", "1", "yes"}
        return "TRUE" if value else "FALSE"
    if logical_type in {"integer", "number"}:
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = float(value) if logical_type == "number" else int(value)
            except (TypeError, ValueError):
                raise SemanticQueryError(f"{value!r} is not a {logical_type}") from None
        return repr(value)
    if logical_type == "date":
        return f"DATE '{_as_date(value).isoformat()}'"
    if logical_type == "timestamp":
        ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return f"TIMESTAMP '{ts.isoformat(sep=' ')}'"
    return "'" + str(value).replace("'", "''") + "'"


class Compiler:
    def __init__(self, layer: SemanticLayer):
        self.layer = layer

    def compile(self, query: SemanticQuery) -> CompiledQuery:
        if not query.metrics:
            raise SemanticQueryError("a query needs at least one metric")
        if query.time_grain and query.time_grain not in TIME_GRAINS:
            raise SemanticQueryError(
                f"time grain {query.time_grain!r} not in {', '.join(TIME_GRAINS)}"
            )
        if query.limit is not None and (not isinstance(query.limit, int) or query.limit < 1):
            raise SemanticQueryError("limit must be a positive integer")
        wanted = list(dict.fromkeys(query.metrics))
        base = [p for m in wanted for p in (ratio_parts(m) or (m,))]
        try:
            metrics = [self.layer.metric(m) for m in dict.fromkeys(base)]
        except KeyError as exc:
            raise SemanticQueryError(exc.args[0]) from None
        groups = self._groups(metrics)
        dim_names = list(dict.fromkeys(query.dimensions))
        output_dims = ([query.time_grain] if query.time_grain else []) + [
            d.rpartition(".")[2] for d in dim_names
        ]
        if len(set(output_dims)) != len(output_dims):
            raise SemanticQueryError("two dimensions share an output name; qualify or drop one")
        ctes, products = [], []
        for i, group in enumerate(groups):
            sql, used = self._cte(group, dim_names, query)
            ctes.append(f"m{i} AS (\n{sql}\n)")
            products.extend(used)
        columns = [*output_dims, *wanted]
        sql = "WITH " + ",\n".join(ctes) + "\nSELECT " + ", ".join(_output(c) for c in columns)
        sql += "\nFROM m0"
        for i in range(1, len(groups)):
            if output_dims:
                using = ", ".join(_q(d) for d in output_dims)
                sql += f"\nFULL OUTER JOIN m{i} USING ({using})"
            else:
                sql += f"\nCROSS JOIN m{i}"
        sql += self._having(query, {m.name: m for m in metrics}, wanted)
        sql += self._order_limit(query, columns, output_dims)
        return CompiledQuery(sql, tuple(dict.fromkeys(products)), tuple(columns))

    def _groups(self, metrics: list[Metric]) -> list[_Group]:
        groups: dict[tuple[str, str | None], _Group] = {}
        for metric in metrics:
            parts = self.layer.base_metrics(metric)
            key = (metric.product, parts[0].non_additive)
            if any(p.non_additive != key[1] for p in parts):
                raise SemanticQueryError(f"{metric.name} mixes additive and snapshot metrics")
            groups.setdefault(key, _Group(*key)).metrics.append(metric)
        return list(groups.values())

    def _dimension(self, name: str, product: str) -> tuple[Dimension, list[JoinStep]]:
        try:
            return self.layer.resolve_dimension(name, product)
        except KeyError as exc:
            raise SemanticQueryError(exc.args[0]) from None

    def _cte(
        self, group: _Group, dim_names: list[str], query: SemanticQuery
    ) -> tuple[str, list[str]]:
        product = group.product
        model = self.layer.models[product]
        base = _alias(product)
        joins: dict[str, JoinStep] = {}
        select, where = [], []
        time_col = f"{base}.{model.time_dimension}" if model.time_dimension else None
        if (query.time_grain or query.start or query.end or group.non_additive) and not time_col:
            raise SemanticQueryError(f"{product} has no time dimension for a grain or a range")
        grain_expr = (
            f"CAST(date_trunc('{query.time_grain}', {time_col}) AS DATE)"
            if query.time_grain
            else None
        )
        if grain_expr:
            select.append(f"{grain_expr} AS {_q(query.time_grain)}")
        for name in dim_names:
            dim, path = self._dimension(name, product)
            joins.update({s.right: s for s in path})
            select.append(f"{_alias(dim.product)}.{dim.column} AS {_q(dim.name)}")
        for f in query.filters:
            where.append(self._filter(f, product, joins))
        if query.start:
            where.append(f"{time_col} >= {literal(query.start, 'date')}")
        if query.end:
            where.append(f"{time_col} < {literal(query.end, 'date')} + INTERVAL 1 DAY")
        if group.non_additive:
            where.append(self._last_snapshot(group, base, grain_expr, where))
        group_by = len(select)
        select += [f"{self._aggregate(m, base)} AS {_q(m.name)}" for m in group.metrics]
        lines = [f"  SELECT {', '.join(select)}", f"  FROM {_table(product)} AS {base}"]
        for step in joins.values():
            left, right = _alias(step.left), _alias(step.right)
            lines.append(
                f"  LEFT JOIN {_table(step.right)} AS {right}"
                f" ON {left}.{step.column} = {right}.{step.column}"
            )
        if where:
            lines.append("  WHERE " + "\n    AND ".join(where))
        if group_by:
            lines.append("  GROUP BY " + ", ".join(str(i + 1) for i in range(group_by)))
        return "\n".join(lines), [product, *joins]

    def _aggregate(self, metric: Metric, base: str) -> str:
        if metric.is_ratio:
            num, den = self.layer.base_metrics(metric)
            return (
                f"CAST({self._aggregate(num, base)} AS DOUBLE)"
                f" / NULLIF({self._aggregate(den, base)}, 0)"
            )
        column = f"{base}.{metric.column}" if metric.column else "*"
        sql = _AGG_SQL[metric.agg].format(column)
        if metric.agg != "sum":
            return sql
        kind = self.layer.contracts[metric.product].column(metric.column).logical_type
        # DuckDB sums integers into HUGEINT (a decimal in Arrow); counts of units fit BIGINT.
        return f"CAST({sql} AS BIGINT)" if kind == "integer" else sql

    def _filter(self, f: Filter, product: str, joins: dict[str, JoinStep]) -> str:
        if f.op not in OPERATORS:
            raise SemanticQueryError(f"operator {f.op!r} not in {', '.join(OPERATORS)}")
        if f.metric:
            owner, name = self._metric_column(f, product), f.dimension
        else:
            dim, path = self._dimension(f.dimension, product)
            joins.update({s.right: s for s in path})
            owner, name = dim.product, dim.column
        kind = self.layer.contracts[owner].column(name).logical_type
        column = f"{_alias(owner)}.{name}"
        if f.op in {"in", "not in"}:
            values = f.value if isinstance(f.value, list | tuple) else [f.value]
            if not values:
                raise SemanticQueryError(f"{f.op} needs at least one value")
            return f"{column} {OPERATORS[f.op]} ({', '.join(literal(v, kind) for v in values)})"
        if f.value is None:
            return f"{column} IS {'NOT ' if f.op == '!=' else ''}NULL"
        return f"{column} {OPERATORS[f.op]} {literal(f.value, kind)}"

    def _metric_column(self, f: Filter, product: str) -> str:
        """The model whose rows a filter on a metric's column compares: the metric's own,
        which must be the one aggregated here, and the column the metric aggregates."""
        try:
            metric = self.layer.metric(f.metric or "")
        except KeyError as exc:
            raise SemanticQueryError(exc.args[0]) from None
        if metric.is_ratio or metric.agg not in {"sum", "avg", "min", "max"}:
            raise SemanticQueryError(f"{metric.name} has no column of its own to compare per row")
        if f.dimension != metric.column:
            raise SemanticQueryError(
                f"{metric.name} aggregates {metric.column!r}, not {f.dimension!r}"
            )
        if product != metric.product:
            raise SemanticQueryError(
                f"{metric.name}'s {metric.column} is a column of {metric.product}, "
                f"not of {product}: ask for metrics of {metric.product} only"
            )
        if metric.column not in self.layer.contracts[product].column_names:
            raise SemanticQueryError(f"{product}'s contract has no column {metric.column!r}")
        return product

    def _last_snapshot(
        self, group: _Group, base: str, grain_expr: str | None, where: list[str]
    ) -> str:
        """Rows of the last snapshot day of each period (of the whole range without a grain)."""
        snap = f"{base}.{group.non_additive}"
        inner_base = f"{base}_snap"
        own_filters = [w.replace(f"{base}.", f"{inner_base}.") for w in where if _only(w, base)]
        inner_where = ("\n      WHERE " + " AND ".join(own_filters)) if own_filters else ""
        inner_snap = f"{inner_base}.{group.non_additive}"
        if grain_expr is None:
            return (
                f"{snap} = (SELECT MAX({inner_snap}) FROM {_table(group.product)} AS {inner_base}"
                f"{inner_where})"
            )
        inner_grain = grain_expr.replace(f"{base}.", f"{inner_base}.")
        return (
            f"{snap} IN (SELECT MAX({inner_snap}) FROM {_table(group.product)} AS {inner_base}"
            f"{inner_where}\n      GROUP BY {inner_grain})"
        )

    def _having(self, query: SemanticQuery, metrics: dict[str, Metric], wanted: list) -> str:
        conditions = []
        for f in query.having:
            if f.dimension not in wanted:
                raise SemanticQueryError(
                    f"cannot filter on {f.dimension!r}: not a metric asked for"
                )
            if f.op not in OPERATORS or f.op in {"in", "not in"}:
                raise SemanticQueryError(f"operator {f.op!r} cannot compare a metric")
            expression = _ratio_sql(f.dimension) if ratio_parts(f.dimension) else _q(f.dimension)
            conditions.append(f"{expression} {OPERATORS[f.op]} {literal(f.value, 'number')}")
        return ("\nWHERE " + " AND ".join(conditions)) if conditions else ""

    def _order_limit(self, query: SemanticQuery, columns: list[str], dims: list[str]) -> str:
        order = []
        for o in query.order_by:
            if o.name not in columns:
                raise SemanticQueryError(f"cannot order by {o.name!r}: not in {columns}")
            order.append(f"{_q(o.name)} {'DESC' if o.descending else 'ASC'} NULLS LAST")
        # Then every dimension, so equal values still come back in one order.
        order += [
            f"{_q(d)} ASC NULLS LAST" for d in dims if d not in {o.name for o in query.order_by}
        ]
        sql = ("\nORDER BY " + ", ".join(order)) if order else ""
        return sql + (f"\nLIMIT {query.limit}" if query.limit else "")


def _only(condition: str, base: str) -> bool:
    """Whether a condition reads only the base table (so it can go into a subquery)."""
    aliases = set(re.findall(r"\b([a-z0-9_]+__[a-z0-9_]+)\.", condition))
    return aliases <= {base}


def _q(name: str) -> str:
    return f'"{name}"'


def _ratio_sql(name: str) -> str:
    numerator, denominator = ratio_parts(name)
    return f"CAST({_q(numerator)} AS DOUBLE) / NULLIF({_q(denominator)}, 0)"


def _output(column: str) -> str:
    return f"{_ratio_sql(column)} AS {_q(column)}" if ratio_parts(column) else _q(column)


def compile_query(layer: SemanticLayer, query: SemanticQuery | Mapping[str, Any]) -> CompiledQuery:
    """Compile a semantic query (or its dict form) to one DuckDB SELECT."""
    if not isinstance(query, SemanticQuery):
        query = SemanticQuery.from_dict(query)
    compiled = Compiler(layer).compile(query)
    assert_read_only(compiled.sql)
    return compiled


def assert_read_only(sql: str) -> None:
    """Exactly one statement, and it is a SELECT (no DDL/DML anywhere in it)."""
    statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    if len(statements) != 1 or not isinstance(statements[0], exp.Select | exp.Union):
        raise SemanticQueryError("not a single SELECT statement")
    writes = (exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Alter, exp.Command)
    if any(statements[0].find_all(*writes)):
        raise SemanticQueryError("the statement writes")


class DuckDBConnections(Protocol):
    """Where DuckDB connections come from: dagster-duckdb's `DuckDBResource`, or `IN_MEMORY`."""

    def get_connection(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...


@dataclass(frozen=True)  # equal copies: a worker knows the connection it opened ahead
class InMemoryDuckDB:
    """What `DuckDBResource(database=":memory:")` gives - a fresh in-memory database per
    connection - without importing Dagster (about 1 s), for short commands."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = duckdb.connect(":memory:")
        try:
            yield con
        finally:
            con.close()


IN_MEMORY = InMemoryDuckDB()


@contextmanager
def connect(
    lake: Lake, products: Iterable[str], connections: DuckDBConnections = IN_MEMORY
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with each product's current Delta snapshot as `domain.product`."""
    with connections.get_connection() as con:
        try:
            for key in sorted(set(products)):
                domain, name = key.split("/")
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{domain}"')
                con.register(f"__{_alias(key)}", lake.dataset(key))
                con.execute(f'CREATE VIEW "{domain}"."{name}" AS SELECT * FROM "__{_alias(key)}"')
            yield con
        finally:
            con.close()  # DuckDBResource's own close is skipped when the block raises


def run_query(
    layer: SemanticLayer,
    lake: Lake,
    query: SemanticQuery | Mapping[str, Any],
    connections: DuckDBConnections = IN_MEMORY,
) -> pl.DataFrame:
    """Compile and run a semantic query over the lake's current tables."""
    compiled = compile_query(layer, query)
    with connect(lake, compiled.products, connections) as con:
        return pl.from_arrow(con.sql(compiled.sql).to_arrow_table())
