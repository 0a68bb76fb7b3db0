"""SQL products: a contract plus a .sql file, run by DuckDBResource, with lineage from sqlglot."""

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from dagster_project import domain_definitions, sql
from dagster_project.core.contracts import Contract
from dagster_project.lake.resource import MeshResource
from dagster_project.products.sql import SqlProductError, sql_inputs
from tests.factories import column, contract_document

READINGS = [
    column("station_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
    column("reading_date", "date", primaryKey=True, primaryKeyPosition=2, required=True),
    column("rain_mm", "number"),
]
STATIONS = [
    column("station_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
    column("basin", required=True),
]
RAIN_BY_BASIN = [
    column("reading_date", "date", primaryKey=True, primaryKeyPosition=1, required=True),
    column("basin", primaryKey=True, primaryKeyPosition=2, required=True),
    column("rain_mm", "number", logicalTypeOptions={"minimum": 0}),
    column("stations", "integer", required=True),
]
QUERY = """
WITH wet AS (SELECT * FROM readings WHERE rain_mm IS NOT NULL)
SELECT w.reading_date, s.basin, sum(w.rain_mm) AS rain_mm, count(*) AS stations
FROM wet AS w JOIN geo.stations AS s USING (station_id)
GROUP BY ALL
"""


def test_inputs_come_from_the_sql():
    assert sql_inputs(QUERY) == ("geo/stations", "readings")  # the CTE is not an input
    assert sql_inputs("SELECT * FROM a.b UNION ALL SELECT * FROM c") == ("a/b", "c")


@pytest.mark.parametrize(
    "text, message",
    [
        ("SELECT 1; SELECT 2", "exactly one SELECT"),
        ("DELETE FROM geo.stations", "exactly one SELECT"),
        ("SELECT FROM WHERE (", "not valid SQL"),
        ("SELECT 42 AS answer", "reads no product"),
    ],
)
def test_a_file_that_is_not_one_select_over_products_is_refused(text, message):
    with pytest.raises(SqlProductError, match=message):
        sql_inputs(text, where="rain.sql")


def _write_contract(folder: Path, domain: str, product: str, properties, **options) -> Contract:
    document = contract_document(properties, domain=domain, product=product, **options)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{product}.odcs.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return Contract(document, str(path))


def test_a_sql_product_runs_through_duckdb_with_lineage_and_checks(tmp_path, lake):
    contracts = tmp_path / "weather" / "contracts"
    readings = _write_contract(contracts, "weather", "readings", READINGS)
    _write_contract(contracts, "weather", "rain_by_basin", RAIN_BY_BASIN)
    stations = Contract(contract_document(STATIONS, domain="geo", product="stations"))
    lake.write(stations, pl.DataFrame({"station_id": [1, 2, 3], "basin": ["Ebro", "Ebro", "Tajo"]}))
    lake.write(
        readings,
        pl.DataFrame(
            {
                "station_id": [1, 2, 3, 1],
                "reading_date": [date(2023, 5, 1)] * 3 + [date(2023, 5, 2)],
                "rain_mm": [1.5, 2.5, None, 4.0],
            }
        ),
    )
    (tmp_path / "rain_by_basin.sql").write_text(QUERY)
    defs = domain_definitions(
        "weather", [sql("rain_by_basin", tmp_path / "rain_by_basin.sql")], contracts=contracts
    )
    asset = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition))
    assert {k.to_user_string() for k in asset.dependency_keys} == {
        "weather/readings",
        "geo/stations",
    }
    assert "duckdb" in asset.specs_by_key[asset.key].kinds
    resources = {**defs.resources, "mesh": MeshResource(home=lake.settings.home)}
    result = dg.materialize([asset], resources=resources)
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} >= {"contract_unique", "contract_range"}
    assert all(c.passed for c in checks)
    rows = lake.read("weather/rain_by_basin").sort("reading_date", "basin")
    assert rows.to_dicts() == [
        {"reading_date": date(2023, 5, 1), "basin": "Ebro", "rain_mm": 4.0, "stations": 2},
        {"reading_date": date(2023, 5, 2), "basin": "Ebro", "rain_mm": 4.0, "stations": 1},
    ]
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert "geo.stations" in metadata["sql"].value


def test_a_missing_sql_file_names_the_file(tmp_path):
    with pytest.raises(SqlProductError, match="no such SQL file"):
        sql("rain_by_basin", tmp_path / "nope.sql")
