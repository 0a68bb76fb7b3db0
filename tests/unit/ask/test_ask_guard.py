import pytest

from dagster_project.ask.guard import GuardError, guard_sql

PRODUCTS = {"sales/order_lines", "sales/stores", "customers/customer_profiles"}


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT 1; DROP TABLE "sales"."order_lines"',
        'DROP TABLE "sales"."order_lines"',
        'DELETE FROM "sales"."order_lines"',
        'INSERT INTO "sales"."stores" VALUES (1)',
        'UPDATE "sales"."stores" SET region = \'x\'',
        'CREATE TABLE t AS SELECT * FROM "sales"."stores"',
        "ATTACH '/tmp/x.db' AS x",
        "COPY (SELECT 1) TO '/tmp/out.csv'",
        "PRAGMA database_list",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET threads = 1",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('s3://bucket/x.parquet')",
        "SELECT * FROM 'https://example.com/data.csv'",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM glob('/*')",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM duckdb_tables()",
        "SELECT * FROM duckdb_settings()",
        "SELECT * FROM pg_catalog.pg_tables",
        "SELECT * FROM sqlite_master",
        "SELECT getenv('HOME')",
        "SELECT current_setting('home_directory')",
        'SELECT * FROM "governance"."access_audit"',
        "SELECT * FROM stores",
        'SELECT * INTO t FROM "sales"."stores"',
        "SELECT 1",
        "not sql at all (",
        "WITH x AS (SELECT * FROM read_csv_auto('/etc/passwd')) SELECT * FROM x",
        'SELECT * FROM "sales"."stores" WHERE store_id IN (SELECT 1 FROM read_text(\'/etc\'))',
    ],
)
def test_the_guard_refuses_anything_but_a_select_over_products(sql):
    with pytest.raises(GuardError):
        guard_sql(sql, PRODUCTS)


@pytest.mark.parametrize(
    ("sql", "reads"),
    [
        ('SELECT region FROM "sales"."stores"', ["sales/stores"]),
        ("SELECT COUNT(*) FROM sales.order_lines", ["sales/order_lines"]),
        (
            'WITH m0 AS (SELECT s.region, SUM(o.net_amount) AS r FROM "sales"."order_lines" o '
            'LEFT JOIN "sales"."stores" s USING (store_id) GROUP BY 1) SELECT * FROM m0',
            ["sales/order_lines", "sales/stores"],
        ),
    ],
)
def test_selects_over_contracted_products_pass(sql, reads):
    assert guard_sql(sql, PRODUCTS) == reads
