"""End to end: `dagster dev -w workspace.yaml` serves the whole mesh.

One server for the module, on a free port, with a temporary DAGSTER_HOME and MESH_HOME
holding three simulated days of landing files. The tests drive it over GraphQL as the UI
does: every code location loads, lineage crosses locations, a product materializes with
its metadata and checks, and the daemon evaluates the landing sensors.

The test instance holds runs requested by sensors and automation in the queue (see
`dagster_server.TEST_INSTANCE_YAML`), so the run a test launches is the only one that executes.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dagster_project.core.settings import MeshSettings
from demo.simulator import simulate
from tests.e2e.dagster_server import DagsterDev

pytestmark = pytest.mark.e2e

LOCATIONS = ("sales", "inventory", "customers", "governance", "dragracer")
START = datetime.date(2025, 3, 1)
DAYS = 3
STORES = ["sales", "stores"]

ASSET_LINEAGE = """
{
  assetNodes {
    assetKey { path }
    dependencyKeys { path }
    dependedByKeys { path }
  }
}
"""

MATERIALIZATIONS = """
query Materializations($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    __typename
    ... on Asset {
      assetMaterializations(limit: 10) {
        runId
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on TextMetadataEntry { text }
        }
      }
    }
  }
}
"""

ASSET_CHECKS = """
query AssetChecks($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode {
      assetChecksOrError {
        __typename
        ... on AssetChecks { checks { name blocking } }
      }
    }
  }
}
"""

CHECK_EXECUTIONS = """
query CheckExecutions($key: AssetKeyInput!, $check: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $check, limit: 10) {
    runId
    status
    evaluation { success severity }
  }
}
"""

SENSOR_TICKS = """
query SensorTicks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status ticks(limit: 10) { status error { message } } } }
    ... on SensorNotFoundError { message }
    ... on PythonError { message }
  }
}
"""

SENSOR_RUNS = """
query SensorRuns($sensor: String!) {
  runsOrError(filter: {tags: [{key: "dagster/sensor_name", value: $sensor}]}) {
    __typename
    ... on Runs { results { runId status assetSelection { path } } }
  }
}
"""


@pytest.fixture(scope="module")
def landed_mesh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("landed_mesh")
    simulate(MeshSettings(home=str(home)), days=DAYS, scale=2000, start=START)
    return home


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, landed_mesh: Path
) -> DagsterDev:
    tmp = tmp_path_factory.mktemp("dagster_dev")
    dev = DagsterDev.start(
        dagster_home=tmp / "dagster_home",
        log_path=tmp / "dagster_dev.log",
        env={"MESH_HOME": str(landed_mesh)},
    )
    request.addfinalizer(dev.stop)  # registered first: runs even if loading fails below
    dev.wait_for_locations(LOCATIONS, timeout=180)
    return dev


@pytest.fixture(scope="module")
def stores_run(server: DagsterDev) -> str:
    """Materialize sales/stores (unpartitioned) from the UI's entry point; its run id."""
    run_id = server.launch_assets("sales", [STORES], tags={"mesh/test": "e2e"})
    server.wait_for_run(run_id, timeout=180)
    return run_id


def test_every_location_loads(server: DagsterDev) -> None:
    entries = server.wait_for_locations(LOCATIONS, timeout=5)
    assert {e["name"] for e in entries} == set(LOCATIONS)


def test_lineage_crosses_locations(server: DagsterDev) -> None:
    nodes = {tuple(n["assetKey"]["path"]): n for n in server.graphql(ASSET_LINEAGE)["assetNodes"]}
    segments = nodes[("customers", "customer_segments")]
    order_lines = nodes[("sales", "order_lines")]
    assert ["sales", "order_lines"] in _paths(segments["dependencyKeys"])
    assert ["customers", "customer_segments"] in _paths(order_lines["dependedByKeys"])
    # governance reads every domain's products
    assert ["sales", "stores"] in _paths(nodes[("governance", "catalog")]["dependencyKeys"])


def test_materialization_reports_metadata(
    server: DagsterDev, stores_run: str, landed_mesh: Path
) -> None:
    asset = server.graphql(MATERIALIZATIONS, key={"path": STORES})["assetOrError"]
    assert asset["__typename"] == "Asset", asset
    ours = [m for m in asset["assetMaterializations"] if m["runId"] == stores_run]
    assert ours, f"no materialization of sales/stores from run {stores_run}"
    metadata = {e["label"]: e for e in ours[0]["metadataEntries"]}
    assert metadata["dagster/row_count"]["intValue"] > 0
    # the run wrote into the test's MESH_HOME, not the default ./.mesh
    assert metadata["dagster/uri"]["text"].startswith(str(landed_mesh))
    assert (landed_mesh / "lake" / "sales" / "stores" / "_delta_log").is_dir()


def test_materialization_evaluates_checks(server: DagsterDev, stores_run: str) -> None:
    node = server.graphql(ASSET_CHECKS, key={"path": STORES})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    checks = node["assetChecksOrError"]["checks"]
    assert any(c["blocking"] for c in checks), "sales/stores has no blocking contract checks"
    for check in checks:
        executions = server.graphql(CHECK_EXECUTIONS, key={"path": STORES}, check=check["name"])
        ours = [e for e in executions["assetCheckExecutions"] if e["runId"] == stores_run]
        assert ours, f"check {check['name']} was not evaluated in run {stores_run}"
        assert ours[0]["evaluation"] is not None, check["name"]
        if check["blocking"]:  # the run succeeded, so its blocking checks passed
            assert ours[0]["status"] == "SUCCEEDED", (check["name"], ours[0])


def test_landing_sensors_tick_and_request_runs(server: DagsterDev) -> None:
    """The daemon evaluates every domain's landing sensor (RUNNING by default) without
    errors, and they request runs for the landed files (held in the test's queue) once
    the files are seen unchanged on a second tick."""
    sensors = {f"{domain}_landing_sensor": domain for domain in LOCATIONS[:3]}
    pending = set(sensors)
    for _ in _poll(timeout=60):
        for name in sorted(pending):
            selector = {
                "repositoryLocationName": sensors[name],
                "repositoryName": "__repository__",
                "sensorName": name,
            }
            sensor = server.graphql(SENSOR_TICKS, selector=selector)["sensorOrError"]
            assert sensor["__typename"] == "Sensor", sensor
            assert sensor["sensorState"]["status"] == "RUNNING", (name, sensor)
            ticks = sensor["sensorState"]["ticks"]
            failed = [t["error"] for t in ticks if t["status"] == "FAILURE"]
            assert not failed, f"{name} failed: {failed}"
            if any(t["status"] in {"SUCCESS", "SKIPPED"} for t in ticks):
                pending.discard(name)
        if not pending:
            break
    else:
        pytest.fail(f"no completed tick within 60 s for {sorted(pending)}")
    # A file is requested once it looked the same on two ticks: the next tick, 30 s on.
    for _ in _poll(timeout=90):
        runs = [
            run
            for name in sensors
            for run in server.graphql(SENSOR_RUNS, sensor=name)["runsOrError"]["results"]
        ]
        if runs:
            break
    assert runs, "the landing sensors requested no runs"
    # Held (see TEST_INSTANCE_YAML): queued, or just created and about to be queued.
    assert {r["status"] for r in runs} <= {"NOT_STARTED", "QUEUED"}


def _paths(keys: list[dict[str, Any]]) -> list[list[str]]:
    return [k["path"] for k in keys]


def _poll(timeout: float, every: float = 1.0) -> Iterator[None]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        yield
        time.sleep(every)
