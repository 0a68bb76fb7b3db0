"""Asking and searching start without Dagster or pandas: a question needs the contracts,
the semantic layer and the lake, not the orchestrator, and no frame library but polars
(bench/cli.py times them)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import REPO
from tests.small_mesh import frames

PROBE = """
import json, sys
from dagster_project.app.cli import app
try:
    app(sys.argv[1:])
except SystemExit:
    pass
heavy = ('dagster', 'dagster_webserver', 'pandas')
loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)
print(json.dumps(loaded), file=sys.stderr)
"""


def _loaded(args: list[str], home: Path) -> list[str]:
    env = {**os.environ, "MESH_HOME": str(home), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args",
    [["ask", "--help"], ["ask", "How many stores are there?"], ["search", "where are our shops"]],
)
def test_the_ask_and_search_path_does_not_import_dagster(args, tmp_path):
    loaded = _loaded(args, tmp_path)
    assert loaded == [], f"mesh {' '.join(args)} imported {loaded[:5]}"


def test_a_question_answered_end_to_end_imports_neither_dagster_nor_pandas(lake, demo_contracts):
    # The whole path: the interpreter, the query worker, the narrative and the audit append.
    for key, frame in frames().items():
        lake.write(demo_contracts[key], frame)
    loaded = _loaded(["ask", "How many stores are there?"], Path(lake.settings.home))
    assert loaded == [], f"mesh ask imported {loaded[:5]}"
    assert lake.exists("governance/access_audit")  # it was answered, and audited
