"""`mesh`: its command groups load lazily, its plugins come from `meshwork.cli`; and the
commands of the data and serve groups."""

import inspect
import json
import os
import re
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from dagster_project.app import cli
from dagster_project.app.cli import app
from tests.mesh_cli import declared_plugins
from tests.small_mesh import write_small_mesh

runner = CliRunner()


def test_status_before_anything_is_built(mesh_env):
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 3, result.output  # nothing built: the records, then exit 3
    records = {r["product"]: r for r in json.loads(result.stdout)}
    assert {"sales/order_lines", "customers/customer_segments"} <= set(records)
    assert records["sales/order_lines"]["freshness"] == "never built"
    assert records["sales/order_lines"]["rows"] is None


def test_api_keys_are_created_listed_and_revoked(mesh_env):
    from dagster_project.access.api_keys import ApiKeyStore

    created = runner.invoke(app, ["api-key", "create", "kim", "--role", "steward", "--days", "30"])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert ApiKeyStore().authenticate(key).role == "steward"
    listed = runner.invoke(app, ["api-key", "list"])
    assert "kim" in listed.output and "steward" in listed.output and key not in listed.output
    unknown = runner.invoke(app, ["api-key", "create", "bob", "--role", "admin"])
    assert unknown.exit_code != 0 and "unknown role" in unknown.output
    assert runner.invoke(app, ["api-key", "revoke", "kim"]).exit_code == 0
    assert ApiKeyStore().authenticate(key) is None
    assert runner.invoke(app, ["api-key", "revoke", "kim"]).exit_code == 1


def _first_paragraph(command) -> str:
    return inspect.cleandoc(command.help).split("\n\n")[0]


@pytest.mark.parametrize("name", cli.COMMANDS)
def test_each_listed_help_is_the_commands_own(name):
    module, listed = cli.COMMANDS[name]
    assert listed == _first_paragraph(cli.group_command(module, name))


def test_help_lists_every_command_and_plugin_without_importing_them():
    code = (
        "import sys; from typer.testing import CliRunner; from dagster_project.app.cli import app;"
        "print(CliRunner().invoke(app, ['--help']).output);"
        "print(*sorted(m for m in sys.modules if m.startswith(('dagster', 'polars', 'demo.'))))"
    )
    wide = {**os.environ, "COLUMNS": "200"}
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=wide)
    *help_lines, imported = shown.stdout.strip().splitlines()
    for name, (_, help) in cli.COMMANDS.items():
        assert any(f" {name} " in line and help[:60] in line for line in help_lines), name
    # the error types `mesh` reports with (a module of constants and one class) load too
    assert imported.split() == [
        "dagster_project",
        "dagster_project.app",
        "dagster_project.app.cli",
        "dagster_project.core",
        "dagster_project.core.errors",
    ]


def test_a_command_group_is_imported_when_one_of_its_commands_runs():
    code = (
        "import sys; from typer.testing import CliRunner; from dagster_project.app.cli import app;"
        "CliRunner().invoke(app, ['api-key', '--help']);"
        "print(*sorted(m for m in sys.modules if m.startswith('dagster_project.app.cli.')))"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert shown.stdout.split() == ["dagster_project.app.cli.serve"]


def test_pyproject_declares_the_demo_and_governance_plugins():
    declared = {ep.name: ep.value for ep in declared_plugins()}
    assert declared == {
        "demo": "demo.cli:demo",
        "share": "governance.sharing.cli:app",
        "simulate": "demo.cli:simulate",
    }
    installed = {ep.name: ep.value for ep in cli.plugins()}
    assert installed.items() <= declared.items()  # older installs lack the newer plugins


def test_a_plugins_help_is_read_from_its_source():
    assert cli.source_help("demo.cli:simulate") == (
        "Land more days of retail data in landing/, so the sensors load them."
    )
    assert cli.source_help("governance.sharing.cli:app") == (
        "Delta Sharing: recipients, profiles and the server."
    )
    assert cli.source_help("demo.cli:no_such_thing") == ""
    assert cli.source_help("no_such_package.cli:app") == ""


def test_plugins_are_listed_after_the_platforms_commands_and_run(declared_mesh):
    mesh = typer.main.get_command(declared_mesh)
    assert mesh.list_commands(None) == [*cli.COMMANDS, "demo", "share", "simulate"]
    assert mesh.commands["demo"].help.startswith("Simulate data, materialize and check every")
    simulate = runner.invoke(declared_mesh, ["simulate", "--help"], terminal_width=120)
    assert simulate.exit_code == 0 and "--scale" in simulate.output
    shares = runner.invoke(declared_mesh, ["share", "--help"], terminal_width=120)
    assert shares.exit_code == 0 and "create" in shares.output


def hello(name: str) -> None:
    """Say hello (a plugin of the next test)."""
    typer.echo(f"hello {name}")


greetings = typer.Typer(help="Greetings (a plugin of the next test).")
greetings.command("hi")(hello)
greetings.command("hey")(hello)


def test_a_plugin_function_is_one_command_and_a_typer_app_a_group(monkeypatch):
    plugins = [EntryPoint(n, f"{__name__}:{n}", cli.PLUGIN_GROUP) for n in ("greetings", "hello")]
    monkeypatch.setattr(cli, "plugins", lambda: plugins)
    shown = runner.invoke(app, ["--help"], terminal_width=120).output
    assert "Greetings (a plugin of the next test)." in shown
    assert "Say hello (a plugin of the next test)." in shown
    assert runner.invoke(app, ["hello", "kim"]).output == "hello kim\n"
    assert runner.invoke(app, ["greetings", "hey", "jo"]).output == "hello jo\n"
    assert runner.invoke(app, ["greetings", "hello", "jo"]).exit_code != 0


@pytest.fixture
def small_mesh(lake, demo_contracts):
    return write_small_mesh(lake, demo_contracts)


STORES_BY_REGION = "SELECT region, count(*) AS n FROM sales.stores GROUP BY region ORDER BY region"


def test_mesh_sql_prints_a_table_json_or_csv(small_mesh):
    table = runner.invoke(app, ["sql", STORES_BY_REGION], terminal_width=200)
    assert table.exit_code == 0, table.output
    assert "North" in table.output and "3 row(s)" in table.output
    as_json = json.loads(runner.invoke(app, ["sql", STORES_BY_REGION, "--format", "json"]).output)
    assert as_json["columns"] == ["region", "n"]
    assert as_json["rows"] == [["East", 1], ["North", 2], ["South", 1]]
    csv = runner.invoke(app, ["sql", STORES_BY_REGION, "--format", "csv"]).output
    assert csv.splitlines() == ["region,n", "East,1", "North,2", "South,1"]


def test_mesh_sql_reads_through_the_access_policy(small_mesh):
    query = "SELECT email FROM customers.customer_profiles ORDER BY customer_id"
    analyst = json.loads(runner.invoke(app, ["sql", query, "--format", "json"]).output)
    steward = runner.invoke(app, ["sql", query, "--as", "steward", "--format", "json"]).output
    clear = [f"person{i}@secret.example" for i in range(5)]
    assert [r[0] for r in json.loads(steward)["rows"]] == clear
    assert not {r[0] for r in analyst["rows"]} & set(clear)  # masked for analysts


@pytest.mark.parametrize(
    "query, role, expected, code",
    [  # SQL the guard rejects is the user's to fix (2); the access policy refusing is 1
        ("DELETE FROM sales.stores", "analyst", "only SELECT is allowed", 2),
        ("SELECT * FROM sales.storez", "analyst", "did you mean sales.stores", 2),
        ("SELECT * FROM sales.stores", "customer_care", "customer_care", 1),
        ("SELECT * FROM read_csv('/etc/passwd')", "analyst", "not allowed", 2),
    ],
)
def test_mesh_sql_refuses_in_one_line(small_mesh, query, role, expected, code):
    result = runner.invoke(app, ["sql", query, "--as", role], terminal_width=200)
    assert result.exit_code == code, result.output
    assert expected in result.output
    assert len(result.output.strip().splitlines()) <= 2, result.output


@pytest.mark.parametrize(
    "domain, product, stacked",
    [("lab", "calibrations", False), ("field_operations", "instrument_calibration_readings", True)],
)
def test_search_never_cuts_a_name_at_80_columns(
    monkeypatch, make_contract, domain, product, stacked
):
    """A name the table would ellipsize ('field_operations/instrume…') is shown whole:
    in the table while it fits beside the other columns, else stacked, a hit per name."""
    from rich.console import Console

    from dagster_project.app import answers
    from dagster_project.app.cli import search
    from dagster_project.metadata.discovery import SemanticIndex, build_entries

    contract = make_contract(domain=domain, product=product)
    monkeypatch.setattr(answers, "mesh_index", lambda: SemanticIndex(build_entries([contract])))
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(search, "console", Console())  # sized as `mesh` sizes it, by COLUMNS
    result = runner.invoke(app, ["search", "calibrations", "-k", "3"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output, result.output
    assert f"{domain}/{product}.widget_name" in result.output, result.output
    assert all(len(line) <= 80 for line in result.output.splitlines()), result.output
    assert ("┃ name" in result.output) is not stacked, result.output


def test_mesh_status_never_cuts_a_checks_name_at_80_columns(monkeypatch):
    from dagster_project.app.cli import data

    record = {
        "product": "aviation/flights", "rows": 1200, "delta_version": 1,
        "last_update": "2026-12-04T18:18:38+00:00", "freshness": "stale", "checks_passed": 9,
        "checks_total": 11, "checks_not_judged": [],
        "checks_failed": ["contract_referential_integrity", "event_freshness"],
    }  # fmt: skip
    monkeypatch.setattr(data, "console", Console(width=80, record=True, force_terminal=False))
    data.print_status([record])
    text = data.console.export_text()
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    last_column = "".join(re.split("[│┃]", line)[-1].strip() for line in text.splitlines())
    assert "failed:contract_referential_integrity,event_freshness" in last_column.replace(" ", "")
