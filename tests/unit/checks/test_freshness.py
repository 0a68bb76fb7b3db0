"""Freshness judged from the data: the age of a product's newest event (its event-time
column) against the contract's SLA, WARN or ERROR as the contract says, never passed
on no data."""

from __future__ import annotations

import copy
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import polars as pl
import pytest
import yaml

from dagster_project import domain_definitions, landing
from dagster_project.checks.freshness import EventFreshness
from dagster_project.checks.quality.checks import QualityChecks
from dagster_project.checks.quality.score import catalog_fields
from dagster_project.core.contracts import Contract, ContractError
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import Lake
from dagster_project.products.product import Written
from tests.factories import column, contract_document

TODAY = datetime.now(UTC).date()
READINGS = [
    column("reading_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
    column("reading_date", "date", required=True, partitioned=True, partitionKeyPosition=1),
    column("read_at", "timestamp"),
    column("value", "number"),
]


def contract(sla: dict[str, Any] | None = None, custom: list | None = None) -> Contract:
    document = contract_document(READINGS, domain="meters", product="readings")
    document["slaProperties"] = [
        {"property": "latency", "value": 2, "unit": "d", **(sla or {})},
    ]
    document["customProperties"] = [{"property": "writeMode", "value": "merge"}, *(custom or [])]
    return Contract(document, "readings.odcs.yaml")


def frame(days: list[date], read_at: list[datetime | None] | None = None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "reading_id": list(range(len(days))),
            "reading_date": days,
            "read_at": read_at or [None] * len(days),
            "value": [1.0] * len(days),
        },
        schema_overrides={"read_at": pl.Datetime("us")},
    )


def judge(lake, product: Contract, rows: pl.DataFrame | None) -> dg.AssetCheckResult:
    if rows is not None:
        lake.write(product, rows)
    written = Written(None, lake, product, rows, None, lake.info(product.key), [])
    (result,) = EventFreshness().evaluate(written).check_results
    return result


def test_the_event_time_column_is_the_slas_element_else_declared_else_the_partition():
    assert contract({"element": "readings.read_at"}).event_time == "read_at"
    assert contract(custom=[{"property": "eventTime", "value": "read_at"}]).event_time == "read_at"
    assert contract().event_time == "reading_date"


def test_a_recent_newest_event_passes_with_its_age(lake):
    result = judge(lake, contract(), frame([TODAY - timedelta(days=5), TODAY - timedelta(days=1)]))
    assert result.passed, result.description
    assert result.metadata["newest_event"].value == str(TODAY - timedelta(days=1))
    assert result.metadata["max_age_hours"].value == 48
    assert 0 <= result.metadata["age_hours"].value <= 24


def test_an_old_newest_event_warns_even_when_just_written(lake):
    result = judge(lake, contract(), frame([TODAY - timedelta(days=10)]))
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert "newest reading_date" in result.description and "9 days" in result.description
    assert "skipped" not in result.metadata


def test_the_contract_sets_the_severity(lake):
    strict = contract({"customProperties": [{"property": "severity", "value": "error"}]})
    result = judge(lake, strict, frame([TODAY - timedelta(days=10)]))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR


def test_a_timestamp_event_time_is_judged_to_the_hour(lake):
    hourly = contract({"element": "readings.read_at", "value": 6, "unit": "h"})
    now = datetime.now(UTC).replace(tzinfo=None)
    fresh = judge(lake, hourly, frame([TODAY], [now - timedelta(hours=2)]))
    assert fresh.passed, fresh.description
    stale = judge(lake, hourly, frame([TODAY], [now - timedelta(hours=9)]))
    assert not stale.passed and "9 hours" in stale.description


@pytest.mark.parametrize("rows", [None, "empty", "nulls"])
def test_no_data_is_never_passed(lake, rows):
    hourly = contract({"element": "readings.read_at"})
    data = {None: None, "empty": frame([]), "nulls": frame([TODAY])}[rows]
    result = judge(lake, hourly, data)
    assert not result.passed
    assert result.description.startswith("not judged:")
    assert "read_at" in result.metadata["skipped"].value


@pytest.mark.parametrize(
    "sla, custom, field",
    [
        ({"element": "readings.value"}, None, "slaProperties/0/element"),
        ({"element": "readings.nope"}, None, "slaProperties/0/element"),
        (None, [{"property": "eventTime", "value": "value"}], "customProperties/eventTime"),
        (
            {"customProperties": [{"property": "severity", "value": "fatal"}]},
            None,
            "slaProperties/0/customProperties/severity",
        ),
    ],
)
def test_an_unusable_event_time_or_severity_names_the_field(sla, custom, field):
    with pytest.raises(ContractError, match=field):
        contract(sla, custom)


def test_a_product_without_sla_or_event_time_gets_no_check():
    document = contract_document(READINGS[:1], domain="meters", product="ids")
    plain = Contract(document)
    assert plain.event_time is None
    assert EventFreshness().specs(plain, dg.AssetKey(["meters", "ids"])) == []


def test_the_check_runs_on_every_materialization(tmp_path, mesh_home):
    folder = tmp_path / "contracts"
    folder.mkdir()
    document = contract().document
    (folder / "readings.odcs.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    old = TODAY - timedelta(days=30)
    buffer = io.BytesIO()
    frame([old]).write_parquet(buffer)
    landed = f"{mesh_home.landing_uri('meters', 'readings')}/{old.isoformat()}.parquet"
    mesh_home.files.write_bytes(landed, buffer.getvalue())
    defs = domain_definitions("meters", [landing("readings")], contracts=folder)
    (asset,) = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    result = dg.materialize(
        [asset], partition_key=old.isoformat(), resources={"mesh": MeshResource()}
    )
    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "event_freshness"
    ]
    assert not evaluation.passed and "29 days" in evaluation.description


def _materialize_old_readings(tmp_path, mesh_home, product: Contract, days_old: int):
    """A real run landing and writing, today, readings `days_old` days old."""
    folder = tmp_path / "contracts"
    folder.mkdir(exist_ok=True)
    (folder / "readings.odcs.yaml").write_text(yaml.safe_dump(product.document, sort_keys=False))
    old = TODAY - timedelta(days=days_old)
    buffer = io.BytesIO()
    frame([old, old]).write_parquet(buffer)
    landed = f"{mesh_home.landing_uri('meters', 'readings')}/{old.isoformat()}.parquet"
    mesh_home.files.write_bytes(landed, buffer.getvalue())
    defs = domain_definitions("meters", [landing("readings")], contracts=folder)
    (asset,) = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [asset], partition_key=old.isoformat(), resources={"mesh": MeshResource()},
        instance=instance,
    )  # fmt: skip
    (materialization,) = result.asset_materializations_for_node(asset.node_def.name)
    return materialization.metadata, instance


def test_old_data_freshly_written_is_stale_in_the_score_catalog_and_status(
    tmp_path, mesh_home, monkeypatch
):
    from dagster_project.app.cli import data
    from governance.catalog import build_catalog

    product = contract()  # SLA 2 days, event time reading_date
    metadata, instance = _materialize_old_readings(tmp_path, mesh_home, product, days_old=30)
    lake = Lake(mesh_home)
    assert datetime.now(UTC) - lake.info(product.key).last_update < timedelta(hours=1)
    assert metadata["quality_dimensions"].value["freshness"] == 0.0  # written now, 29 days old
    assert "newest reading_date" in metadata["quality_narrative"].value
    assert catalog_fields(mesh_home, product)["quality_freshness"] == 0.0
    (row,) = build_catalog([product], lake, instance).to_dicts()
    assert row["freshness"] == "stale" and row["quality_freshness"] == 0.0
    assert row["newest_event"] == str(TODAY - timedelta(days=30))
    monkeypatch.setattr(data, "discover_contracts", lambda: [product])
    (record,) = data.product_status(mesh_home, instance)
    assert record["freshness"] == "stale" and "beyond the SLA" in record["freshness_detail"]
    assert "event_freshness" in record["checks_failed"]


def test_without_an_event_time_freshness_is_not_judged_anywhere(tmp_path, mesh_home, monkeypatch):
    from dagster_project.app.cli import data
    from governance.catalog import build_catalog

    document = copy.deepcopy(contract().document)
    for prop in document["schema"][0]["properties"]:  # no partition: no event time
        prop.pop("partitioned", None), prop.pop("partitionKeyPosition", None)
    product = Contract(document, "readings.odcs.yaml")
    assert product.freshness is not None and product.event_time is None
    lake = Lake(mesh_home)
    lake.write(product, frame([TODAY - timedelta(days=30)]))
    written = Written(None, lake, product, frame([]), None, lake.info(product.key), [])
    result = QualityChecks().evaluate(written)
    assert result.metadata["quality_dimensions"].value["freshness"] is None
    assert (
        "Freshness: not judged: no event-time column" in result.metadata["quality_narrative"].value
    )
    instance = dg.DagsterInstance.ephemeral()
    (row,) = build_catalog([product], lake, instance).to_dicts()
    assert row["freshness"] == "not judged" and row["quality_freshness"] is None
    monkeypatch.setattr(data, "discover_contracts", lambda: [product])
    (record,) = data.product_status(mesh_home, instance)
    assert record["freshness"] == "not judged" and record["newest_event"] is None
