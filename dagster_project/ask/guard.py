"""The guard every question's SQL passes before it runs: one read-only SELECT over
contracted products, nothing else (no DDL/DML, ATTACH, COPY, PRAGMA, INSTALL/LOAD, SET,
file or URL table functions, system catalogs)."""

from __future__ import annotations

import difflib
from collections.abc import Collection

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

FORBIDDEN_PREFIXES = ("duckdb_", "pg_", "sqlite_")
FORBIDDEN_SCHEMAS = {"information_schema", "pg_catalog", "main", "temp", "system"}
FORBIDDEN_NODES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.Copy,
    exp.Attach,
    exp.Detach,
    exp.Pragma,
    exp.Set,
    exp.Use,
    exp.Merge,
    exp.Into,
    exp.Install,
    exp.Describe,
)


class GuardError(ValueError):
    """SQL the guard refuses, with the reason."""


def _forbidden_nodes() -> tuple[type[exp.Expression], ...]:
    return tuple(n for n in FORBIDDEN_NODES if isinstance(n, type))


def _close(key: str, products: Collection[str]) -> str:
    """A hint naming the closest products (as the SQL writes them), or `mesh search`."""
    close = difflib.get_close_matches(key, list(products), n=2, cutoff=0.6)
    names = " or ".join(k.replace("/", ".") for k in close)
    return f"; did you mean {names}?" if close else " (`mesh search` finds products)"


def guard_sql(sql: str, products: Collection[str]) -> list[str]:
    """The `domain/product` keys the SQL reads; raises GuardError unless it is exactly
    one SELECT whose every table is a contracted product in `products`."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except ParseError as exc:
        raise GuardError(f"not valid SQL: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise GuardError("exactly one statement is allowed")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise GuardError(f"only SELECT is allowed, not {tree.key.upper()}")
    found = next(tree.find_all(*_forbidden_nodes()), None)
    if found is not None:
        raise GuardError(f"{found.key.upper()} is not allowed")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    read: list[str] = []
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise GuardError(f"table functions are not allowed: {table.sql('duckdb')}")
        name, schema = table.name.lower(), table.db.lower()
        if table.catalog:
            raise GuardError(f"catalogs are not allowed: {table.sql('duckdb')}")
        if not schema and name in ctes:
            continue
        if schema in FORBIDDEN_SCHEMAS or name.startswith(FORBIDDEN_PREFIXES):
            raise GuardError(f"system catalogs are not allowed: {table.sql('duckdb')}")
        key = f"{schema}/{name}"
        if not schema or key not in products:
            raise GuardError(
                f"{table.sql('duckdb')} is not a contracted product{_close(key, products)}"
            )
        read.append(key)
    for func in tree.find_all(exp.Func):
        name = (func.sql_name() if not isinstance(func, exp.Anonymous) else func.name).lower()
        if name.startswith(("read_", "glob", "duckdb_", "pg_")) or name in _FILE_FUNCTIONS:
            raise GuardError(f"function {name} is not allowed")
    if not read:
        raise GuardError("the query reads no product")
    return sorted(set(read))


_FILE_FUNCTIONS = {
    "read_csv",
    "read_csv_auto",
    "read_parquet",
    "read_json",
    "read_json_auto",
    "read_text",
    "read_blob",
    "parquet_scan",
    "delta_scan",
    "iceberg_scan",
    "sqlite_scan",
    "postgres_scan",
    "getenv",
    "current_setting",
    "query",
    "query_table",
}
