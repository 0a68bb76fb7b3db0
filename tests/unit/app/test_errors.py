"""Every user mistake ends in one or two lines (what is wrong, what to run) and a
documented exit code; `--debug` shows the traceback instead."""

import shutil
import socket
import sys
from datetime import date

import polars as pl
import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from dagster_project.ai import Task
from dagster_project.ai.openai_provider import OpenAIProvider
from dagster_project.app.cli import app, domain
from dagster_project.core.errors import ENVIRONMENT, FAILED, INTERNAL, USAGE
from dagster_project.lake.storage import Lake
from tests.factories import REPO

runner = CliRunner()


def mesh(*args: str):
    return runner.invoke(app, list(args), terminal_width=200)


def assert_short(result, code: int, *words: str) -> None:
    """Exit `code`, at most two lines, no traceback, each of `words` said."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, result.output
    assert "Traceback" not in result.output and 'File "' not in result.output
    for word in words:
        assert word in result.output, result.output


def test_status_on_an_empty_home_says_what_to_run_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "mesh"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert_short(mesh("status"), ENVIRONMENT, "Nothing is built", "mesh demo")
    assert not (tmp_path / "mesh").exists()


def test_ask_on_an_empty_home_says_what_to_run(mesh_env):
    assert_short(mesh("ask", "revenue by region"), ENVIRONMENT, "Nothing is built", "mesh demo")


def test_a_bad_domain_name_names_the_snake_case_fix(mesh_env):
    assert_short(mesh("new-domain", "Bad Name!"), USAGE, "snake_case", "mesh new-domain bad_name")


def test_an_unknown_product_names_the_closest(mesh_env):
    assert_short(mesh("read", "sales/storez", "--role", "analyst"), USAGE, "sales/stores")
    assert_short(mesh("synth", "nothing/here"), USAGE, "No product", "mesh status")


@pytest.fixture
def one_built_product(mesh_env, demo_contracts):
    stores = pl.DataFrame(
        {
            "store_id": [1, 2],
            "store_name": ["A", "B"],
            "city": ["X", "Y"],
            "region": ["North", "South"],
            "opened_date": [date(2020, 1, 1), date(2021, 1, 1)],
            "size_sqm": [100.0, 200.0],
        }
    )
    contract = demo_contracts["sales/stores"]
    Lake().write(contract, stores.cast(dict(contract.polars_schema)))


def test_bad_sql_is_the_users_to_fix(one_built_product):
    assert_short(mesh("ask", "--sql", "SELEC 1"), USAGE, "refused", "SQL")


@pytest.fixture
def repo_copy(tmp_path, monkeypatch):
    """A copy of the repo's workspace, domains and governance, run in and imported from."""
    shutil.copy(REPO / "workspace.yaml", tmp_path / "workspace.yaml")
    for folder in ("domains", "governance"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.pyc"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # the copy's domains package, found first
    ours = [m for m in sys.modules if m == "domains" or m.startswith("domains.")]
    for name in ours:
        monkeypatch.delitem(sys.modules, name)
    yield tmp_path
    for name in [m for m in sys.modules if m.split(".")[0] == "domains" and m not in ours]:
        del sys.modules[name]  # the copy's, imported while the test ran


def test_a_typo_in_a_contract_names_file_field_and_fix(repo_copy, mesh_env):
    stores = repo_copy / "domains/sales/contracts/stores.odcs.yaml"
    stores.write_text(stores.read_text().replace("logicalType: string", "logicalTyp: string", 1))
    result = mesh("status")
    assert result.exit_code == USAGE, result.output
    error = result.output[result.output.index("Error:") :].strip().splitlines()
    assert len(error) == 2 and "Traceback" not in result.output
    assert "stores.odcs.yaml" in error[0] and "did you mean 'logicalType'" in error[0]


def test_a_metric_two_domains_declare_leaves_the_second_out_and_says_so(repo_copy, mesh_env):
    """Named in both files, not a bug report nor every domain unanswerable: the file that
    declares it second is left out, the others are searched and answered."""
    semantics = repo_copy / "domains/dragracer/semantics.yaml"
    again = "metrics:\n  - name: revenue\n    model: episodes\n    agg: count\n"
    semantics.write_text(semantics.read_text().replace("metrics:\n", again, 1))
    result = mesh("search", "revenue")
    assert result.exit_code == 0, result.output
    note = " ".join(result.output[result.output.index("note:") :].split())
    assert "domains/dragracer/semantics.yaml is left out of the semantic layer" in note
    assert "metric revenue is declared twice: in domains/sales/semantics.yaml" in note
    assert "sales/order_lines" in result.output  # the first declaration is still found


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Reply(BaseModel):
    text: str


def test_an_unreachable_model_endpoint_falls_back_and_says_how_to_fix(monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    provider = OpenAIProvider(base_url=url, api_key="k", max_retries=0, timeout=2)
    task = Task("reply", "Reply.", {}, Reply, offline=lambda facts: {"text": "offline"})
    generated = provider.generate(task)
    assert generated.value.text == "offline"
    (warning,) = provider.usage.warnings
    assert "nothing answers at" in warning and "unset OPENAI_BASE_URL" in warning


def test_a_port_in_use_names_the_port_and_the_fix(mesh_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert_short(mesh("serve", "--port", port), ENVIRONMENT, port, "mesh serve --port")


def test_debug_shows_the_traceback(mesh_env):
    result = mesh("--debug", "new-domain", "Bad Name!")
    assert result.exit_code != 0 and result.exc_info is not None
    assert type(result.exception).__name__ == "UserError"


def test_a_refusal_anywhere_is_one_line_and_exit_1(mesh_env, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError("role intern may not read sales/stores")

    monkeypatch.setattr(domain, "find_root", denied)
    assert_short(mesh("new-domain", "marketing"), FAILED, "refused", "intern")


def test_an_unexpected_error_is_one_line_and_exit_4(mesh_env, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(domain, "find_root", broken)
    assert_short(mesh("new-domain", "marketing"), INTERNAL, "KeyError", "--debug")
