"""`mesh landing`: list the quarantined files, release one, retract a file's rows — as a
user types them, mistakes included (one line and exit 1; a usage error exits 2)."""

from __future__ import annotations

import getpass
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from dagster_project.app.cli import app
from dagster_project.checks.quality.companions import discover_contracts
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.landing import landing_files, quarantine
from dagster_project.lake.lineage import audit_entries
from dagster_project.lake.resource import MeshResource
from dagster_project.lake.storage import Lake
from domains.sales.definitions import defs

runner = CliRunner()
HEADER = "store_id,store_name,city,region,opened_date,size_sqm\n"
GOOD = HEADER + "1,Harbour,Porto,North,2020-05-01,850\n2,Old Town,Lisbon,South,2021-06-02,1200\n"
LATE = HEADER + "3,Airport,Faro,South,2022-01-01,300\n4,Mill,Leeds,East,2022-02-01,250\n"


@pytest.fixture
def mesh(mesh_env: dict[str, str]) -> MeshSettings:
    """sales/stores built from two landed files (2 stores each) by a real materialization."""
    settings = MeshSettings(home=mesh_env["MESH_HOME"])
    folder = settings.landing_uri("sales", "stores")
    settings.files.write_text(f"{folder}/2025-03-01.csv", GOOD)
    settings.files.write_text(f"{folder}/2025-03-02.csv", LATE)
    stores = next(
        a
        for a in defs.assets or []
        if isinstance(a, dg.AssetsDefinition) and a.key == dg.AssetKey(["sales", "stores"])
    )
    with dg.DagsterInstance.ephemeral() as instance:
        run = dg.materialize(
            [stores], resources={"mesh": MeshResource(home=settings.home)}, instance=instance
        )
    assert run.success
    return settings


def store_ids(settings: MeshSettings) -> list[int]:
    return sorted(Lake(settings).read("sales/stores")["store_id"].to_list())


def test_a_dry_run_shows_what_would_go_and_a_retract_removes_it(mesh: MeshSettings) -> None:
    shown = runner.invoke(
        app, ["landing", "retract", "2025-03-02.csv", "--reason", "test feed", "--dry-run"]
    )
    assert shown.exit_code == 0, shown.output
    assert "Would remove 2 row(s) of sales/stores brought by 2025-03-02.csv" in shown.output
    assert store_ids(mesh) == [1, 2, 3, 4] and audit_entries(mesh) == []
    done = runner.invoke(
        app, ["landing", "retract", "sales/stores/2025-03-02.csv", "--reason", "test feed"]
    )
    assert done.exit_code == 0, done.output
    assert "Removed 2 row(s) of sales/stores brought by 2025-03-02.csv" in done.output
    assert store_ids(mesh) == [1, 2]
    assert [f.name for f in landing_files(mesh, "sales/stores")] == ["2025-03-01.csv"]
    (entry,) = audit_entries(mesh)
    assert entry["principal"] == f"cli:{getpass.getuser()}" and entry["reason"] == "test feed"
    assert entry["rows_removed"] == 2


def test_retract_mistakes_are_one_line_with_the_fix(mesh: MeshSettings) -> None:
    unknown = runner.invoke(app, ["landing", "retract", "nope.csv", "--reason", "x"])
    assert unknown.exit_code == 2
    assert unknown.output.strip().startswith("no landing file nope.csv: landed files are in")
    assert len(unknown.output.strip().splitlines()) <= 2
    no_reason = runner.invoke(app, ["landing", "retract", "2025-03-01.csv"])
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    blank = runner.invoke(app, ["landing", "retract", "2025-03-01.csv", "--reason", " "])
    assert blank.exit_code == 2 and "--reason must say why" in blank.output
    assert store_ids(mesh) == [1, 2, 3, 4]


def test_quarantined_files_are_listed_and_one_is_released(mesh: MeshSettings) -> None:
    (late,) = [f for f in landing_files(mesh, "sales/stores") if f.name == "2025-03-02.csv"]
    contract = next(c for c in discover_contracts() if c.key == "sales/stores")
    quarantine(mesh, contract, late, "values do not fit the contract types")
    listed = runner.invoke(app, ["landing", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "2025-03-02.csv" in listed.output and "values do not fit" in listed.output
    released = runner.invoke(app, ["landing", "release", "2025-03-02.csv"])
    assert released.exit_code == 0, released.output
    assert "judges it again" in released.output
    assert [f.name for f in landing_files(mesh, "sales/stores")][-1] == "2025-03-02.csv"
    assert "No quarantined files." in runner.invoke(app, ["landing", "list"]).output
    again = runner.invoke(app, ["landing", "release", "2025-03-02.csv"])
    assert again.exit_code == 2 and "`mesh landing list` shows them" in again.output


def test_no_mesh_is_one_line_with_the_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "nowhere"))
    result = runner.invoke(app, ["landing", "list"])
    assert result.exit_code == 3
    assert result.output.strip() == (
        f"no mesh at {tmp_path / 'nowhere'}: set MESH_HOME, or run `mesh demo` first"
    )


def test_outside_the_project_is_one_line_with_the_fix(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "mesh").mkdir()
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "mesh"))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["landing", "retract", "a.csv", "--reason", "x"])
    assert result.exit_code == 3
    assert result.output.strip() == (
        f"no workspace.yaml in {tmp_path} or its parents: run mesh from your project's folder"
    )
