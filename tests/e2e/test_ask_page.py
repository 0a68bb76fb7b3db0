"""The web page in headless Chromium (Debian's `chromium`): a question asked through
the page renders the answer table, the narrative and the SQL."""

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from tests.servers import mesh_serve
from tests.small_mesh import write_small_mesh


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
