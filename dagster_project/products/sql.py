"""SQL products: a contract plus a `.sql` file, run by dagster-duckdb's `DuckDBResource`.

The file is one SELECT over other products, named `domain.product` (or just `product`
for the location's own). Its inputs, and so the asset's lineage, are parsed from the SQL
with sqlglot. Each input is handed to DuckDB as Arrow (only the run's days where the
input is partitioned), under a view of the name the SQL uses, so no DuckDB extension is
needed; the rows then go through the same write and checks as any product.
"""

from pathlib import Path

import polars as pl
import sqlglot
from sqlglot import exp

from dagster_project.products.product import Product, ProductRun, Rows, qualified

RESOURCE = "duckdb"


class SqlProductError(ValueError):
    """A SQL file that cannot define a product."""


def sql(name: str, path: Path | str, *, cron: str | None = None) -> Product:
    """The product `name` computed by the SELECT in `path` (e.g. `daily_totals.sql`)."""
    path = Path(path)
    if not path.exists():
        raise SqlProductError(f"{path}: no such SQL file for product {name}")
    text = path.read_text()
    inputs = sql_inputs(text, where=str(path))

    def build(run: ProductRun) -> Rows:
        with run.resource(RESOURCE).get_connection() as con:
            for key in qualified(inputs, run.contract.domain):
                domain, product = key.split("/")
                con.register(f"__{domain}__{product}", run.scan(key).collect().to_arrow())
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{domain}"')
                con.execute(
                    f'CREATE OR REPLACE VIEW "{domain}"."{product}" AS '
                    f'SELECT * FROM "__{domain}__{product}"'
                )
                if domain == run.contract.domain:  # the location's own, unqualified
                    view = f'main."{product}"'
                    con.execute(
                        f'CREATE OR REPLACE VIEW {view} AS SELECT * FROM "{domain}"."{product}"'
                    )
            frame = pl.from_arrow(con.sql(text).to_arrow_table())
        return Rows(frame, {"sql": f"```sql\n{text.strip()}\n```", "sql_file": str(path)})

    return Product(
        name, build=build, inputs=inputs, cron=cron, resources=(RESOURCE,), kinds=("duckdb",)
    )


def sql_inputs(text: str, *, where: str = "<sql>") -> tuple[str, ...]:
    """The products a SELECT reads: `domain/product` for `domain.product`, `product` for an
    unqualified name (the location's own); common table expressions are not inputs."""
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise SqlProductError(f"{where}: not valid SQL: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise SqlProductError(f"{where}: a SQL product is exactly one SELECT statement")
    query = statements[0]
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    found: set[str] = set()
    for table in query.find_all(exp.Table):
        if table.name in ctes and not table.db:
            continue
        found.add(f"{table.db}/{table.name}" if table.db else table.name)
    if not found:
        raise SqlProductError(f"{where}: the SELECT reads no product")
    return tuple(sorted(found))
