"""A product partitioned by an event timestamp, as real data lands it (hourly weather, a
year of daily files whose rows carry `time_hour`): each row's partition is the UTC day of
its timestamp. Landed by day, refreshed, replayed, corrected, and read by a derived
product one window at a time, through Dagster as any daily product."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import yaml

from dagster_project import derived, domain_definitions, landing
from dagster_project.app.refresh import refresh
from dagster_project.core.contracts import load_contracts
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import Lake
from tests.factories import column, contract_document

D1, D2 = date(2013, 1, 1), date(2013, 1, 2)
HOURLY = [  # no primary key: a day is rebuilt from its files
    column("origin", required=True),
    column("time_hour", "timestamp", required=True, partitioned=True),
    column("temp", "number"),
]
DAILY = [
    column("origin", primaryKey=True, primaryKeyPosition=1, required=True),
    column("day", "date", primaryKey=True, primaryKeyPosition=2, partitioned=True),
    column("readings", "integer", required=True),
    column("mean_temp", "number"),
]
# As readr writes them: UTC with an offset; 23:59:59 is still the file's day.
DAY1 = "origin,time_hour,temp\nJFK,2013-01-01T00:00:00Z,1.0\nJFK,2013-01-01T12:00:00Z,3.0\n"
DAY1 += "LGA,2013-01-01T23:59:59Z,5.0\n"
DAY2 = "origin,time_hour,temp\nJFK,2013-01-02T00:00:00Z,7.0\nLGA,2013-01-02T06:00:00Z,9.0\n"
DAY2 += "LGA,2013-01-02T23:00:00Z,11.0\n"


def _write(folder: Path, product: str, columns: list[dict[str, Any]], start: str) -> None:
    document = contract_document(
        columns, domain="weather", product=product, write_mode="partition_overwrite"
    )
    document["schema"][0]["customProperties"] = [{"property": "partitionStart", "value": start}]
    (folder / f"{product}.odcs.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
def weather(tmp_path: Path, mesh_home: MeshSettings):
    """A `weather` location: `hourly` lands, `daily` is derived from the run's days of it
    (and records which days it was given); its Definitions and a real instance."""
    folder = tmp_path / "weather" / "contracts"
    folder.mkdir(parents=True)
    _write(folder, "hourly", HOURLY, "2013-01-01")
    _write(folder, "daily", DAILY, "2013-01-01")
    seen: list[list[date]] = []

    def daily(hourly: pl.LazyFrame) -> pl.LazyFrame:
        rows = hourly.collect()
        seen.append(sorted(set(rows["time_hour"].dt.date().to_list())))
        return (
            rows.lazy()
            .group_by("origin", pl.col("time_hour").dt.date().alias("day"))
            .agg(readings=pl.len().cast(pl.Int64), mean_temp=pl.col("temp").mean())
        )

    products = [landing("hourly"), derived("daily", daily, "hourly")]
    defs = domain_definitions("weather", products, contracts=folder)
    contracts = list(load_contracts(folder).values())
    with dg.DagsterInstance.ephemeral() as instance:
        yield defs, contracts, mesh_home, instance, seen


def land(settings: MeshSettings, name: str, body: str) -> None:
    uri = f"{settings.landing_uri('weather', 'hourly')}/{name}"
    settings.files.write_bytes(uri, body.encode())


def hourly(lake: Lake) -> list[tuple[str, datetime, float]]:
    frame = lake.read("weather/hourly").sort("time_hour", "origin")
    return list(frame.select("origin", "time_hour", "temp").iter_rows())


def daily(lake: Lake) -> dict[tuple[str, date], tuple[int, float]]:
    frame = lake.read("weather/daily")
    return {(o, d): (n, t) for o, d, n, t in frame.iter_rows()}


def sensor_runs(defs: dg.Definitions, settings: MeshSettings, instance) -> list[Any]:
    """Two ticks of the landing sensor, then the runs it asked for, as the daemon runs them."""
    sensor, cursor, requests = defs.resolve_sensor_def("weather_landing_sensor"), None, []
    for _ in range(2):
        context = dg.build_sensor_context(
            cursor=cursor, resources={"mesh": MeshResource(home=settings.home)}, instance=instance
        )
        result = sensor(context)
        cursor, requests = result.cursor, requests + list(result.run_requests or [])
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    return [
        dg.materialize(
            [a for a in assets if a.key in set(r.asset_selection or [])],
            partition_key=r.partition_key,
            resources={"mesh": MeshResource(home=settings.home)},
            instance=instance,
            tags=r.tags,
        )
        for r in requests
    ]


def test_a_timestamp_partitioned_product_lands_replays_and_corrects_by_day(weather) -> None:
    defs, contracts, settings, instance, seen = weather
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    hourly_asset = next(a for a in assets if a.key == dg.AssetKey(["weather", "hourly"]))
    assert hourly_asset.partitions_def.start.date() == D1  # daily partitions, its start
    land(settings, "weather_2013-01-01.csv", DAY1)
    land(settings, "weather_2013-01-02.csv", DAY2)
    report = refresh(
        assets,
        contracts,
        settings=settings,
        instance=instance,
        resources=defs.resources,
        window=(D1, D2),  # mesh refresh --from 2013-01-01 --to 2013-01-02
    )
    assert report.success, report
    lake = Lake(settings)
    assert lake.partition_columns("weather/hourly") == []  # no Delta partition per instant
    assert lake.info("weather/hourly").columns == ["origin", "time_hour", "temp"]
    built = hourly(lake)
    assert [(o, t.isoformat()) for o, t, _ in built] == [
        ("JFK", "2013-01-01T00:00:00"),
        ("JFK", "2013-01-01T12:00:00"),
        ("LGA", "2013-01-01T23:59:59"),
        ("JFK", "2013-01-02T00:00:00"),
        ("LGA", "2013-01-02T06:00:00"),
        ("LGA", "2013-01-02T23:00:00"),
    ]
    assert daily(lake) == {
        ("JFK", D1): (2, 2.0),
        ("LGA", D1): (1, 5.0),
        ("JFK", D2): (1, 7.0),
        ("LGA", D2): (2, 10.0),
    }
    seen.clear()

    # The source resends day 2 under another name: a replay, no run, no row twice.
    land(settings, "weather_2013-01-02_resend.csv", DAY2)
    assert sensor_runs(defs, settings, instance) == []
    assert hourly(lake) == built

    # A corrected day 1 (same name, new bytes): exactly day 1's rows are replaced, and the
    # derived product reads day 1 only.
    land(settings, "weather_2013-01-01.csv", DAY1.replace("3.0", "4.0").rsplit("LGA", 1)[0])
    [run] = sensor_runs(defs, settings, instance)
    assert run.success
    assert run.dagster_run.tags["dagster/partition"] == "2013-01-01"
    corrected = hourly(lake)
    assert [(o, t.day, v) for o, t, v in corrected] == [
        ("JFK", 1, 1.0),
        ("JFK", 1, 4.0),
        ("JFK", 2, 7.0),
        ("LGA", 2, 9.0),
        ("LGA", 2, 11.0),
    ]
    assert seen == [[D1]]
    assert daily(lake) == {
        ("JFK", D1): (2, 2.5),
        ("JFK", D2): (1, 7.0),
        ("LGA", D2): (2, 10.0),
    }


def test_rows_outside_the_runs_day_are_refused_naming_their_days(weather) -> None:
    """A transform that moves readings by a day fails before its write; 23:59:59 of the
    run's day is inside it, 00:00:00 of the next day is not."""
    defs, contracts, settings, _, _ = weather
    land(settings, "weather_2013-01-01.csv", DAY1)
    assets = {a.key.to_user_string(): a for a in defs.assets if isinstance(a, dg.AssetsDefinition)}
    resources = {"mesh": MeshResource(home=settings.home)}
    assert dg.materialize(
        [assets["weather/hourly"]], partition_key="2013-01-01", resources=resources
    )

    def shifted(hourly: pl.LazyFrame) -> pl.LazyFrame:
        return hourly.with_columns(pl.col("time_hour").dt.offset_by("1s"))

    moved = domain_definitions(
        "weather",
        [landing("hourly"), derived("hourly_shifted", shifted, "hourly")],
        contracts=_shifted_contracts(settings, contracts),
    )
    asset = next(a for a in moved.assets if a.key.to_user_string() == "weather/hourly_shifted")
    with pytest.raises(
        dg.Failure, match=r"1 row\(s\) with time_hour outside .*\(e\.g\. 2013-01-02\)"
    ):
        dg.materialize([asset], partition_key="2013-01-01", resources=resources)
    assert not Lake(settings).exists("weather/hourly_shifted")


def _shifted_contracts(settings: MeshSettings, contracts) -> Path:
    folder = Path(settings.home) / "shifted_contracts"
    folder.mkdir()
    _write(folder, "hourly", HOURLY, "2013-01-01")
    _write(folder, "hourly_shifted", HOURLY, "2013-01-01")
    return folder


def test_the_spark_engine_refuses_a_timestamp_partition_at_load(tmp_path: Path) -> None:
    """Spark writes a day as a Delta partition: a timestamp's days are the local engine's."""
    folder = tmp_path / "contracts"
    folder.mkdir()
    _write(folder, "hourly", HOURLY, "2013-01-01")
    path = folder / "hourly.odcs.yaml"
    document = yaml.safe_load(path.read_text())
    document["customProperties"].append({"property": "engine", "value": "spark"})
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(ValueError, match=r"time_hour is a timestamp, which the Spark engine"):
        domain_definitions("weather", [landing("hourly")], contracts=folder)
