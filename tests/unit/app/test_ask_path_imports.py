"""Asking and searching start without Dagster: a question needs the contracts, the
semantic layer and the lake, not the orchestrator (bench/cli.py times them)."""

import json
import os
import subprocess
import sys

import pytest

from tests.factories import REPO

PROBE = """
import json, sys
from dagster_project.app.cli import app
try:
    app(sys.argv[1:])
except SystemExit:
    pass
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'dagster_webserver'))
print(json.dumps(loaded), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [["ask", "--help"], ["ask", "How many stores are there?"], ["search", "where are our shops"]],
)
def test_the_ask_and_search_path_does_not_import_dagster(args, tmp_path):
    env = {**os.environ, "MESH_HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert loaded == [], f"mesh {' '.join(args)} imported {loaded[:5]}"
