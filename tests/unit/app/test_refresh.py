"""`mesh refresh`: real Dagster runs over selected products and days, a summary table, an
exit code that says whether a product or a blocking check failed, and one-line errors."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from rich.console import Console
from typer.testing import CliRunner

from dagster_project.app.cli import app, build
from dagster_project.app.refresh import Outcome
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.storage import Lake
from demo.simulator import simulate

runner = CliRunner()
REFERENCED = ["sales/stores", "inventory/products", "customers/customer_profiles"]


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide terminal: the summary table's cells are not cut."""
    monkeypatch.setattr(build, "console", Console(width=200))


@pytest.fixture
def landed(mesh_env: dict[str, str]) -> MeshSettings:
    settings = MeshSettings(home=mesh_env["MESH_HOME"])
    simulate(settings, days=2, scale=400, start=date(2025, 3, 1))
    return settings


def selected(*products: str) -> list[str]:
    return [arg for p in products for arg in ("--select", p)]


def test_refresh_builds_the_selected_products_over_the_given_days(landed):
    args = ["refresh", *selected(*REFERENCED, "sales/order_lines", "daily_sales")]
    result = runner.invoke(app, [*args, "--from", "2025-03-02", "--to", "2025-03-02"])
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert set(lines) == {*REFERENCED, "sales/order_lines", "sales/daily_sales"}
    assert "landing" in lines["sales/order_lines"] and "derived" in lines["sales/daily_sales"]
    assert "5 asset(s) built and checked" in result.output
    lake = Lake(landed)
    assert lake.read("sales/order_lines")["order_date"].unique().to_list() == [date(2025, 3, 2)]
    rows = f"{lake.info('sales/order_lines').rows:,}"
    assert f" {rows} " in lines["sales/order_lines"]
    assert not lake.exists("inventory/stock_levels")  # not selected
    runs = dg.DagsterInstance.get().get_runs()  # real runs on the mesh's instance
    assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)


def test_days_asked_for_in_one_of_two_stretches_build_there_and_are_not_called_skipped(landed):
    simulate(landed, days=1, scale=200, start=date(2025, 5, 1))  # a second stretch of days
    args = ["refresh", *selected(*REFERENCED, "sales/order_lines")]
    result = runner.invoke(app, [*args, "--from", "2025-05-01", "--to", "2025-05-01"])
    assert result.exit_code == 0, result.output
    assert "skipped" not in result.output
    lake = Lake(landed)
    assert lake.read("sales/order_lines")["order_date"].unique().to_list() == [date(2025, 5, 1)]
    late = ["refresh", *selected("sales/order_lines"), "--from", "2026-01-01", "--to", "2026-01-31"]
    result = runner.invoke(app, late)
    assert result.exit_code == 1, result.output  # a product asked for by name had no day
    assert "none of its landed days is in 2026-01-01 .. 2026-01-31" in " ".join(
        result.output.split()
    )


def _ranges(instance: dg.DagsterInstance) -> list[tuple[str, str]]:
    """The day ranges of the instance's runs, newest first."""
    tags = [run.tags for run in instance.get_runs()]
    start, end = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
    return [(t[start], t[end]) for t in tags if start in t]


def test_a_refresh_builds_only_new_or_unbuilt_days_and_full_rebuilds_all(landed):
    args = ["refresh", *selected(*REFERENCED, "sales/order_lines", "daily_sales")]
    assert runner.invoke(app, args).exit_code == 0
    instance = dg.DagsterInstance.get()
    assert _ranges(instance) == [("2025-03-01", "2025-03-02")]

    again = runner.invoke(app, args)  # nothing new: the daily products are as they were
    assert again.exit_code == 0, again.output
    lines = {line.split("│")[1].strip(): line for line in again.output.splitlines() if "│" in line}
    assert "up to date" in lines["sales/order_lines"] and "up to date" in lines["sales/daily_sales"]
    assert "3 asset(s) built and checked, 2 up to date" in again.output
    assert len(_ranges(instance)) == 1

    simulate(landed, days=1, scale=200, start=date(2025, 3, 3))  # a new day lands
    newer = runner.invoke(app, args)
    assert newer.exit_code == 0, newer.output
    assert _ranges(instance)[0] == ("2025-03-03", "2025-03-03")  # that day alone
    lake = Lake(landed)
    days = lake.read("sales/daily_sales")["order_date"].unique().sort().to_list()
    assert days == [date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)]

    full = runner.invoke(app, [*args, "--full"])
    assert full.exit_code == 0, full.output
    assert _ranges(instance)[0] == ("2025-03-01", "2025-03-03")


def test_a_failed_blocking_check_exits_1_and_says_which(landed):
    # order lines without the stores, products and customers they reference
    result = runner.invoke(app, ["refresh", "--location", "sales", *selected("order_lines")])
    assert result.exit_code == 1, result.output
    assert "blocked" in result.output
    assert "contract_referential_integrity" in result.output
    assert "Traceback" not in result.output and "Stack Trace" not in result.output


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--location", "sale"], "no location 'sale' in workspace.yaml; did you mean sales?"),
        (
            ["--location", "sales", "--select", "order_line"],
            "no product 'order_line' in location sales; did you mean sales/order_lines",
        ),
        (["--select", "stores", "--from", "2025-03-09", "--to", "2025-03-01"], "is after --to"),
    ],
)
def test_an_unknown_location_or_product_is_one_line_with_the_fix(mesh_env, args, expected):
    result = runner.invoke(app, ["refresh", *args], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert len(result.output.strip().splitlines()) <= 6  # typer boxes a usage error
    assert "Traceback" not in result.output


def test_a_failed_product_exits_1_with_its_reason(landed):
    result = runner.invoke(app, ["refresh", *selected("sales/daily_sales")])
    assert result.exit_code == 1, result.output  # asked for by name, and not built
    assert "sales/daily_sales" in result.output and "sales/order_lines" in result.output
    assert "not built" in result.output


def test_the_summary_keeps_asset_names_whole_on_an_80_column_terminal(monkeypatch):
    console = Console(width=80, record=True)
    monkeypatch.setattr(build, "console", console)
    names = ["portal/plots", "portal/plot_sessions", "portal/surveys_anomalies"]
    build.print_outcomes([Outcome(n, "built (duckdb)", "ok", rows=1_551, passed=14) for n in names])
    text = console.export_text()
    assert all(name in text.splitlines() for name in names), text  # each on its own line
    assert "…" not in text


def test_the_progress_counts_an_asset_built_in_several_stretches_once(monkeypatch):
    from dagster_project.app.cli import run
    from dagster_project.app.refresh import RefreshReport, Selection

    @dg.asset(key=["portal", "surveys"])
    def surveys() -> None: ...

    def three_stretches(assets, contracts, *, on_wave, on_done, **_):
        for _ in range(3):  # e.g. monthly trapping sessions more than four weeks apart
            on_wave(["portal/surveys"])
            on_done(["portal/surveys"], None)
        return RefreshReport()

    console = Console(width=80, record=True)
    monkeypatch.setattr(run, "console", console)
    monkeypatch.setattr(run, "refresh", three_stretches)
    monkeypatch.setattr(run, "discover_contracts", list)
    run.refresh_with_progress(MeshSettings(), None, Selection([surveys], {}), logs=False)
    text = console.export_text()
    assert "1/1 assets" in text and "3/1" not in text, text


def test_long_asset_names_keep_each_asset_on_one_line_at_80_columns(monkeypatch):
    console = Console(width=80, record=True)
    monkeypatch.setattr(build, "console", console)
    names = ["governance/customers_customer_profiles_shared", "portal/plots"]
    build.print_outcomes([Outcome(n, "built (duckdb)", "ok", rows=1_551, passed=14) for n in names])
    lines = console.export_text().splitlines()
    for name in names:
        facts = lines[lines.index(name) + 1]
        assert facts == "    built (duckdb), ok, 1,551 rows, checks 14 ok, 0 failed, 0 not judged"
    wide = Console(width=160, record=True)
    monkeypatch.setattr(build, "console", wide)
    build.print_outcomes([Outcome(n, "built (duckdb)", "ok", rows=1_551, passed=14) for n in names])
    assert f"│ {names[0]} │ built (duckdb) │ ok" in wide.export_text()


def test_the_summary_names_a_replayed_file_and_the_file_it_repeats(landed):
    folder = Path(landed.home) / "landing" / "sales" / "stores"
    (original,) = sorted(folder.iterdir())
    shutil.copy(original, folder / f"resent-{original.name}")
    result = runner.invoke(app, ["refresh", *selected("sales/stores")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the table wraps long notes
    assert f"skipped as replays: resent-{original.name} (the same bytes as" in text
    assert original.name in text.split("skipped as replays:")[1]
