"""Production profile: the Dagster instance's storage on a real PostgreSQL server."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

import dagster_project
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.resource import MeshResource
from demo.simulator import simulate
from tests.e2e.postgres_server import PostgresUnavailable, postgres_server

DEPLOYED_INSTANCE = Path(dagster_project.__file__).parent / "app" / "deploy" / "dagster.yaml"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    try:
        with (
            tempfile.TemporaryDirectory(prefix="mesh-pg-") as folder,
            postgres_server(Path(folder) / "pg") as url,
        ):
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")


def test_runs_are_stored_in_postgres(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    # The documented production instance, as shipped; only its folders point at tmp_path.
    config = DEPLOYED_INSTANCE.read_text().replace("/var/lib/dagster", str(tmp_path))
    (dagster_home / "dagster.yaml").write_text(config)
    monkeypatch.setenv("DAGSTER_PG_URL", postgres_url)
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "mesh"))
    settings = MeshSettings(home=str(tmp_path / "mesh"))
    simulate(settings, days=1, scale=500, start=date(2025, 3, 1))
    from domains.sales.definitions import defs as sales

    stores = [
        a
        for a in sales.assets
        if isinstance(a, dg.AssetsDefinition) and a.key == dg.AssetKey(["sales", "stores"])
    ]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        result = dg.materialize(stores, instance=instance, resources={"mesh": MeshResource()})
        assert result.success
    with dg.DagsterInstance.from_config(str(dagster_home)) as reopened:  # read back
        run = reopened.get_run_by_id(result.run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        event = reopened.get_latest_materialization_event(dg.AssetKey(["sales", "stores"]))
        assert event is not None and event.run_id == result.run_id
        assert event.asset_materialization.metadata["dagster/row_count"].value > 0
