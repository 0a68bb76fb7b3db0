"""Fixtures of the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagster_project.engines.spark_resource import SparkResource
from tests.spark_mesh import build


@pytest.fixture(scope="session")
def local_sales(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mesh home with the sales products built on the local engine, once for every
    Spark engine test that compares against it."""
    home = tmp_path_factory.mktemp("local-sales")
    with pytest.MonkeyPatch.context() as monkeypatch:
        build(home, "local", SparkResource(), monkeypatch)  # no session is started
    return home
