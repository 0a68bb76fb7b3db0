"""The champion demand model served by `mlflow models serve` and scored over REST.

The model is trained on simulated sales, registered and made champion; the server loads
it by alias from the sqlite registry (`--env-manager local`: no environment is built,
nothing is downloaded) and answers on a free loopback port. Its answers must equal the
champion loaded in-process through `mlflow.pyfunc`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from dagster_project.app.services import stop
from dagster_project.core.settings import MeshSettings
from dagster_project.ml import interval_model
from dagster_project.ml.tracking import MLflowResource, champion_challenger, pinned
from domains.inventory import forecasting as fc
from tests.sales_history import history, trained
from tests.servers import free_port

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def _register_champion(resource: MLflowResource) -> str:
    model = trained()
    with resource.start_run(fc.EXPERIMENT) as run:
        logged = resource.log_pyfunc(
            model.model,
            "model",
            pip_requirements=pinned("mlflow", "scikit-learn", "numpy", "pandas"),
            example=fc.model_inputs(model.backtest.head(3)),
            by_value=[interval_model],
        )
    version = resource.register(fc.MODEL_NAME, logged.model_uri, run.info.run_id, {}).version
    wape = model.metrics["wape"]
    decision = champion_challenger(
        resource, fc.MODEL_NAME, version, wape, lambda m: 0.0, metric="wape"
    )
    assert decision.promoted
    return str(version)


def _wait(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow models serve exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def test_the_champion_is_served_over_rest_by_alias(mlflow_home: MeshSettings) -> None:
    resource = MLflowResource()
    _register_champion(resource)
    data = history()
    rows = fc.model_inputs(fc.future_rows(data.daily_sales, data.products).head(40))
    expected = resource.load(fc.MODEL_NAME).predict(rows)  # by alias, through mlflow.pyfunc

    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": resource.resolved_tracking_uri,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # mlflow runs `uvicorn`
    }
    command = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{fc.MODEL_NAME}@champion"]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(
        command,
        env=env,
        cwd=mlflow_home.home,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/ping", server)
        # Python's JSON keeps every digit (pandas' to_json rounds to 10); NaN goes as null.
        data = rows.astype(object).where(rows.notna(), None).values.tolist()
        body = {"dataframe_split": {"columns": list(rows.columns), "data": data}}
        answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=30)
    finally:
        stop(server, grace_s=10)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert len(predictions) == len(rows)
    for column in ("prediction", "lower", "upper"):
        served = np.array([p[column] for p in predictions])
        assert np.allclose(served, expected[column].to_numpy())
    assert server.poll() is not None  # the server's process group is gone
