"""Every contract passes `datacontract lint` (datacontract-cli, the standard ODCS tool) and
its relationships resolve with that tool's own ODCS reference resolver. datacontract-cli
pins typer below the mesh's, so it runs in a throwaway virtualenv (tests/isolated_venv)."""

import json
import subprocess
from pathlib import Path

import pytest

from dagster_project.core.contracts import load_contract
from tests.factories import CONTRACT_FILES
from tests.isolated_venv import cached_venv_python

DATACONTRACT_PINS = ["datacontract-cli==1.2.8"]
CHECK = Path(__file__).with_name("datacontract_check.py")


@pytest.fixture(scope="module")
def datacontract_python(request, tmp_path_factory) -> Path:
    return cached_venv_python(request, tmp_path_factory, "datacontract-cli", DATACONTRACT_PINS)


def test_every_contract_lints_and_its_relationships_resolve(datacontract_python):
    shown = subprocess.run(
        [str(datacontract_python), str(CHECK), *map(str, CONTRACT_FILES)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    reports = [json.loads(line) for line in shown.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == len(CONTRACT_FILES)
    resolved = 0
    for report in reports:
        assert report["result"] == "passed", report
        assert report["failed"] == {}, report
        contract = load_contract(report["path"])
        for ref, (column, target, target_type) in report["resolved"].items():
            # the tool lands on the column our parser names, of the same type
            assert ref.endswith(f"/properties/{target}")
            assert contract.column(column).logical_type == target_type, (report["path"], ref)
            resolved += 1
    assert resolved >= 10  # the demo's cross-contract keys: stores, products, customers
