"""The services `mesh demo` runs: each one's output in its own log file, a taken port
refused before anything starts, and the service that stopped on its own reported."""

import os
import socket
import sys

import pytest

from dagster_project.app.services import Service, log_path, mlflow_ui, serve
from dagster_project.core.errors import EnvironmentProblem


def test_output_goes_to_a_log_file_and_the_service_that_stopped_is_reported(tmp_path):
    talker = Service("Talker UI", [sys.executable, "-c", "print('hello'); raise SystemExit(3)"], "")
    ended = serve([talker], tmp_path, dict(os.environ), tmp_path / "logs")
    assert ended == (talker, 3)
    log = log_path(tmp_path / "logs", talker)
    assert log.name == "talker-ui.log" and log.read_text().strip() == "hello"


def test_a_taken_port_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        marker = tmp_path / "started"
        never = Service("X", [sys.executable, "-c", f"open({str(marker)!r}, 'w')"], "", port)
        with pytest.raises(EnvironmentProblem, match=f"Port {port}"):
            serve([never], tmp_path, dict(os.environ), tmp_path / "logs")
    assert not marker.exists()


def test_mlflow_ui_ignores_only_its_own_starlette_warning(mesh_env):
    (ui,) = mlflow_ui()
    assert dict(ui.env) == {"PYTHONWARNINGS": "ignore::UserWarning:mlflow.server.fastapi_app"}
