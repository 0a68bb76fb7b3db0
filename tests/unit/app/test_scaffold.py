import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dagster_project.app.cli import app
from dagster_project.app.scaffold import scaffold_domain
from dagster_project.core.contracts import load_contract
from dagster_project.core.errors import UserError
from dagster_project.core.workspace import read_workspace

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A throwaway copy of the parts of the repo a new domain touches."""
    shutil.copy(REPO / "workspace.yaml", tmp_path / "workspace.yaml")
    shutil.copytree(
        REPO / "domains", tmp_path / "domains", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(
        REPO / "governance", tmp_path / "governance", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def _python(root: Path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_new_domain_registers_it_in_the_workspace_it_runs_in(repo_copy: Path, monkeypatch):
    real_workspace = (REPO / "workspace.yaml").read_text()
    monkeypatch.chdir(repo_copy)
    result = CliRunner().invoke(
        app, ["new-domain", "marketing", "--product", "campaigns"], terminal_width=400
    )
    assert result.exit_code == 0, result.output
    assert f"updated {repo_copy / 'workspace.yaml'}" in result.output
    assert "created" in result.output and "created " + str(repo_copy / "workspace.yaml") not in (
        result.output
    )
    assert "marketing" in [loc.name for loc in read_workspace(repo_copy / "workspace.yaml")]
    assert (repo_copy / "domains/marketing/contracts/campaigns.odcs.yaml").exists()
    assert (REPO / "workspace.yaml").read_text() == real_workspace
    # the default grants follow classification: analysts read the new product
    assert "Who reads marketing/campaigns" in result.output and "analyst:" in result.output


def test_scaffold_writes_a_loadable_location(repo_copy: Path):
    created = scaffold_domain(repo_copy, "marketing", product="campaigns")
    names = {p.relative_to(repo_copy).as_posix() for p in created}
    assert {
        "domains/marketing/definitions.py",
        "domains/marketing/contracts/campaigns.odcs.yaml",
        "tests/locations/test_marketing_location.py",
        "workspace.yaml",
    } <= names

    contract = load_contract(repo_copy / "domains/marketing/contracts/campaigns.odcs.yaml")
    assert contract.key == "marketing/campaigns" and contract.primary_key == ["id"]
    locations = {loc.name: loc.module for loc in read_workspace(repo_copy / "workspace.yaml")}
    assert locations["marketing"] == "domains.marketing.definitions"
    assert {"sales", "inventory", "customers", "governance"} <= set(locations)

    loaded = _python(
        repo_copy,
        (
            "import dagster as dg, domains.marketing.definitions as m;"
            "dg.Definitions.validate_loadable(m.defs);"
            "print(sorted(k.to_user_string() for k in m.defs.resolve_all_asset_keys()))"
        ),
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "marketing/campaigns" in loaded.stdout

    generated_test = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/locations/test_marketing_location.py",
        ],
        cwd=repo_copy,
        env={**os.environ, "PYTHONPATH": str(repo_copy)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert generated_test.returncode == 0, generated_test.stdout + generated_test.stderr


@pytest.mark.parametrize("name", ["Marketing", "sales", "9lives"])
def test_scaffold_refuses_bad_or_taken_names(repo_copy: Path, name: str):
    with pytest.raises(UserError):
        scaffold_domain(repo_copy, name)
