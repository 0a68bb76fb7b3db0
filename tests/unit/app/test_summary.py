"""The demo's summary table: every asset on one line of an 80-column terminal, its name
whole, a model's missing rows and checks shown as '-'."""

from rich.console import Console

from dagster_project.app.cli import summary


def test_each_asset_is_one_whole_line_at_80_columns(monkeypatch):
    shown = Console(width=80, record=True)
    monkeypatch.setattr(summary, "console", shown)
    names = ["customers/customer_profiles_shared_partner", "inventory/demand_model"]
    records = [
        dict(
            asset=names[0],
            kind="deltasharing",
            rows=2020,
            checks_passed=11,
            checks_total=11,
            seconds=2.8,
            failed=False,
        ),
        dict(
            asset=names[1],
            kind="mlflow+scikit-learn",
            rows=None,
            checks_passed=0,
            checks_total=0,
            seconds=122.7,
            failed=False,
        ),
    ]
    summary.print_summary(records)
    lines = shown.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines)
    body = [line for line in lines if line.startswith(tuple(names))]
    assert len(body) == 2 and "2,020" in body[0] and "11/11" in body[0]
    assert "122.7" in body[1] and " - " in body[1]
