"""The web page in headless Chromium (Debian's `chromium`): a question asked through
the page renders the answer table, its chart, the narrative and the SQL; a product page
draws its trend charts."""

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote_plus

import polars as pl
import pytest

from dagster_project.ask.values import NO_VALUE
from dagster_project.checks.quality.score import QualityScore, save_score
from tests.servers import mesh_serve
from tests.small_mesh import frames, write_small_mesh


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed with apt-get when missing and we are root."""
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "chromium"],
            check=False,
            capture_output=True,
            timeout=600,
        )
        found = shutil.which("chromium")
    if found is None:
        pytest.skip(
            "chromium is not installed and could not be installed (apt-get install chromium)"
        )
    return found


@pytest.fixture
def server(lake, demo_contracts, tmp_path):
    write_small_mesh(lake, demo_contracts)
    with mesh_serve(tmp_path) as base:
        yield base


def render(chromium: str, url: str, profile: Path) -> str:
    """The DOM after the page's scripts ran (and their requests finished)."""
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    command += [f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom", url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def test_a_question_asked_on_the_page_renders_table_narrative_and_sql(chromium, server, tmp_path):
    url = f"{server}/?q={quote_plus('revenue by region')}"
    dom = render(chromium, url, tmp_path / "profile")
    assert 'id="answer-table"' in dom, dom[-2000:]
    table = dom[dom.index('id="answer-table"') :]
    table = table[: table.index("</table>")]
    for cell in ("<th>region</th>", "<th>revenue</th>", "<td>North</td>", "<td>99.6</td>"):
        assert cell in table
    assert "Revenue by region: 3 row(s). Highest is North" in dom
    assert 'id="answer-sql"' in dom and "FROM m0" in dom
    assert "sales/order_lines" in dom  # the product list rendered too


def drawn_chart(dom: str, element_id: str) -> tuple[str, str]:
    """The x and y axis titles of the Plotly chart drawn in `element_id` (it has an SVG)."""
    assert f'id="{element_id}"' in dom, dom[-2000:]
    chart = dom[dom.index(f'id="{element_id}"') :]
    following = chart.find('class="chart"', 1)  # the next chart's element, if any
    chart = chart[: following if following > 0 else None]
    assert "main-svg" in chart, chart[:2000]  # Plotly drew into the element
    titles = re.findall(r'class="([xy])title"[^>]*>([^<]*)<', chart)
    return next(t for a, t in titles if a == "x"), next(t for a, t in titles if a == "y")


def test_an_answer_by_category_is_drawn_as_a_chart_whose_axes_are_the_columns(
    chromium, server, tmp_path
):
    url = f"{server}/?q={quote_plus('revenue by region')}"
    dom = render(chromium, url, tmp_path / "profile")
    assert drawn_chart(dom, "answer-chart") == ("region", "revenue")
    assert 'class="point"' in dom  # the bars themselves


def test_a_product_page_draws_its_trends(chromium, server, lake, demo_contracts, tmp_path):
    contract = demo_contracts["sales/order_lines"]
    for day, drift in (("2025-03-10T06:00", 1.0), ("2025-03-11T06:00", 0.5)):
        save_score(lake.settings, contract, QualityScore(contract.key, {"drift": drift}, {}, day))
    dom = render(chromium, f"{server}/?product=sales/order_lines", tmp_path / "profile")
    assert drawn_chart(dom, "trend-rows") == ("order_date", "rows")
    assert drawn_chart(dom, "trend-quality") == ("evaluated at", "score (0-100)")


def test_a_group_with_no_value_reads_as_the_cli_shows_it(chromium, lake, demo_contracts, tmp_path):
    data = frames()
    stores = data["sales/stores"].with_columns(
        region=pl.when(pl.col("store_id") == 3).then(None).otherwise(pl.col("region"))
    )
    for key, frame in {**data, "sales/stores": stores}.items():
        lake.write(demo_contracts[key], frame)
    with mesh_serve(tmp_path) as base:
        dom = render(chromium, f"{base}/?q={quote_plus('revenue by region')}", tmp_path / "p")
    table = dom[dom.index('id="answer-table"') :]
    table = table[: table.index("</table>")]
    assert f"<td>{NO_VALUE}</td>" in table and "<td></td>" not in table, table
