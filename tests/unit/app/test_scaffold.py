import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from dagster_project.app.cli import app
from dagster_project.app.scaffold import scaffold_domain, singular
from dagster_project.core.contracts import load_contract
from dagster_project.core.errors import UserError
from dagster_project.core.workspace import read_workspace
from dagster_project.metadata.semantics import load_semantic_layer

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
        "domains/marketing/contracts/insights.odcs.yaml",
        "domains/marketing/semantics.yaml",
        "tests/locations/test_marketing_location.py",
        "workspace.yaml",
    } <= names

    contract = load_contract(repo_copy / "domains/marketing/contracts/campaigns.odcs.yaml")
    assert contract.key == "marketing/campaigns" and contract.primary_key == ["campaign_id"]
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
    assert "marketing/campaigns" in loaded.stdout and "marketing/insights" in loaded.stdout

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


def _mesh(
    root: Path, home: Path, *args: str, installed: bool = False
) -> subprocess.CompletedProcess:
    """`mesh ARGS` as a user runs it in `root`, a fresh process with the mesh home `home`
    (`installed`: the installed `mesh` command, with no PYTHONPATH)."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MESH_", "DAGSTER_")) and k != "PYTHONPATH"
    }
    env = {
        **keep,
        "PYTHONPATH": "" if installed else os.pathsep.join([str(root), str(REPO)]),
        "PYTHONWARNINGS": "ignore",
        "MESH_HOME": str(home),
        "MESH_LANDING_MIN_AGE_SECONDS": "0",
        "MESH_ASK_DAEMON": "off",  # no warm process outlives the test
        "COLUMNS": "200",
    }
    command = [str(Path(sys.executable).parent / "mesh")] if installed else [sys.executable]
    command += [] if installed else ["-m", "dagster_project.app.cli"]
    command += args
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)


NAMES = ["alpha", "beta", "beta", "gamma", "beta"]
DAYS = ["02-10", "02-11", "03-20", "03-21", "03-22"]  # 2 in the 28 days before the last 28


def _scaffold_land_refresh(root: Path, home: Path, *kind: str) -> subprocess.CompletedProcess:
    """`mesh new-domain fieldwork --product readings [--sql]`, five readings landed, then
    `mesh refresh --location fieldwork`, changing nothing the scaffold wrote."""
    created = _mesh(root, home, "new-domain", "fieldwork", "--product", "readings", *kind)
    assert created.returncode == 0, created.stderr
    assert "semantics.yaml" in created.stdout and "mesh refresh --location fieldwork" in (
        created.stdout.replace("\n", " ")
    )
    landing = home / "landing" / "fieldwork" / "readings"
    landing.mkdir(parents=True)
    pairs = enumerate(zip(NAMES, DAYS, strict=True), start=1)
    rows = [f"{i},{n},2025-{d}T09:00:00" for i, (n, d) in pairs]
    (landing / "2025-03-22.csv").write_text("reading_id,name,updated_at\n" + "\n".join(rows))
    built = _mesh(root, home, "refresh", "--location", "fieldwork")
    assert built.returncode == 0, built.stdout + built.stderr
    return built


def test_new_domain_in_an_empty_folder_starts_a_mesh_with_governance(tmp_path: Path):
    """Outside this repository, with the installed `mesh` and no PYTHONPATH: new-domain
    writes workspace.yaml (governance and the domain), and the domain builds and answers."""
    root, home = tmp_path / "mesh", tmp_path / "home"
    root.mkdir()
    created = _mesh(root, home, "new-domain", "fieldwork", "--product", "readings", installed=True)
    assert created.returncode == 0, created.stdout + created.stderr
    assert f"created {root / 'workspace.yaml'}" in created.stdout.replace("\n", "")
    names = [loc.name for loc in read_workspace(root / "workspace.yaml")]
    assert names == ["governance", "fieldwork"]
    landing = home / "landing" / "fieldwork" / "readings"
    landing.mkdir(parents=True)
    (landing / "2025-03-22.csv").write_text(
        "reading_id,name,updated_at\n1,alpha,2025-03-22T09:00:00\n"
    )
    built = _mesh(root, home, "refresh", installed=True)  # governance too
    assert built.returncode == 0, built.stdout + built.stderr
    assert "shares.yaml" not in built.stdout + built.stderr  # this repo's shares are not its
    asked = _mesh(root, home, "ask", "how many readings", "--format", "json", installed=True)
    assert json.loads(asked.stdout)["rows"] == [[1]], asked.stdout + asked.stderr


@pytest.mark.parametrize("kind, built", [((), 2), (("--sql",), 3)])
def test_a_scaffolded_domain_reports_insights_from_its_semantic_layer(
    repo_copy: Path, tmp_path: Path, kind: tuple[str, ...], built: int
):
    home = tmp_path / "home"
    refreshed = _scaffold_land_refresh(repo_copy, home, *kind)
    assert f"{built} asset(s) built and checked" in refreshed.stdout  # insights among them
    # the scaffolded `insights` section: the count, and the names whose count moved
    insights = pl.read_delta(str(home / "lake" / "fieldwork" / "insights")).sort("kind")
    assert insights.select("kind", "subject", "value", "previous_value").rows() == [
        ("headline", "all", 3.0, 2.0), ("mover", "name=beta", 2.0, 1.0),
    ]  # fmt: skip
    report = (home / "reports" / "insights" / "fieldwork.md").read_text()
    assert "- Readings rose 50.0% to 3 (from 2)." in report, report
    assert "- Readings in name beta rose 100.0% to 2 (from 1)." in report, report


def test_a_scaffolded_domain_answers_questions_and_is_found_after_one_refresh(
    repo_copy: Path, tmp_path: Path
):
    """new-domain -> land a file -> mesh refresh -> mesh ask / mesh search, changing nothing
    the scaffold wrote: its semantics.yaml fits its contract as scaffolded."""
    home = tmp_path / "home"
    built = _scaffold_land_refresh(repo_copy, home, "--sql")
    assert "3 asset(s) built and checked" in built.stdout  # the landed one, its SQL, insights
    summary = pl.read_delta(str(home / "lake" / "fieldwork" / "readings_summary"))
    assert dict(summary.select("name", "readings_count").iter_rows()) == {
        "alpha": 1, "beta": 3, "gamma": 1,
    }  # fmt: skip

    asked = _mesh(repo_copy, home, "ask", "how many readings by name", "--format", "json")
    assert asked.returncode == 0, asked.stdout + asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["status"] == "answered", answer
    assert answer["semantic_query"] == {"metrics": ["readings_count"], "dimensions": ["name"]}
    counts = {name: NAMES.count(name) for name in NAMES}
    assert {row[0]: row[1] for row in answer["rows"]} == counts
    # "number of <entity>" is the scaffold's count metric too, not a distinct count of a column
    asked = _mesh(repo_copy, home, "ask", "number of readings by name", "--format", "json")
    assert json.loads(asked.stdout)["semantic_query"]["metrics"] == ["readings_count"], asked.stdout

    status = _mesh(repo_copy, home, "status", "--json")
    records = {r["product"]: r for r in json.loads(status.stdout)}
    for product in ("fieldwork/readings", "fieldwork/readings_summary"):
        # just written, but the newest updated_at is of 2025: stale by the scaffolded SLA
        assert records[product]["freshness"] == "stale", records[product]
        assert records[product]["checks_failed"] == ["event_freshness"], records[product]

    found = _mesh(repo_copy, home, "search", "readings", "--json")
    assert found.returncode == 0, found.stderr
    ids = [hit["id"] for hit in json.loads(found.stdout)]
    expected = {"metric:readings_count", "product:fieldwork/readings"}
    assert expected | {"product:fieldwork/readings_summary"} <= set(ids[:5]), ids


def test_the_scaffolded_semantic_layer_names_the_scaffolded_product(repo_copy: Path):
    scaffold_domain(repo_copy, "field_ops", product="surveys")
    contract = load_contract(repo_copy / "domains/field_ops/contracts/surveys.odcs.yaml")
    layer = load_semantic_layer([repo_copy / "domains/field_ops/semantics.yaml"], [contract])
    assert layer.entities["survey"].key == "survey_id" == contract.primary_key[0]
    assert layer.metrics["surveys_count"].product == "field_ops/surveys"
    assert [d.name for d in layer.models["field_ops/surveys"].dimensions] == ["updated_at", "name"]


def test_a_second_domain_with_the_same_first_product_is_refused_not_a_broken_layer(
    repo_copy: Path,
):
    scaffold_domain(repo_copy, "north")
    with pytest.raises(UserError, match="records_count") as refused:
        scaffold_domain(repo_copy, "south")
    assert "--product" in refused.value.fix
    assert not (repo_copy / "domains/south").exists()
    scaffold_domain(repo_copy, "south", product="visits")  # another name is fine
    layer = load_semantic_layer(
        [repo_copy / f"domains/{d}/semantics.yaml" for d in ("north", "south")],
        [
            load_contract(repo_copy / "domains/north/contracts/records.odcs.yaml"),
            load_contract(repo_copy / "domains/south/contracts/visits.odcs.yaml"),
        ],
    )
    assert {"record", "visit"} <= set(layer.entities)


@pytest.mark.parametrize(
    "plural, entity",
    [("records", "record"), ("stories", "story"), ("status", "status"), ("address", "address")],
)
def test_the_entity_of_a_product_is_its_singular(plural: str, entity: str):
    assert singular(plural) == entity
