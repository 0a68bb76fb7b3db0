"""Run with a python that has datacontract-cli (see test_datacontract_cli.py): lint each
contract given and resolve each relationship's `to` with datacontract-cli's own resolver
of ODCS references. Prints one JSON line per contract."""

import json
import sys
from pathlib import Path

import yaml
from datacontract.data_contract import DataContract
from datacontract.lint.resolve import _resolve_local_definition


def _value(result) -> str:
    return str(getattr(result, "value", result))


for path in sys.argv[1:]:
    run = DataContract(data_contract_file=path).lint()
    resolved, failed = {}, {}
    for prop in yaml.safe_load(Path(path).read_text())["schema"][0].get("properties", []):
        for rel in prop.get("relationships", []):
            try:
                target = _resolve_local_definition(rel["to"], path, frozenset())
                resolved[rel["to"]] = [prop["name"], target.name, target.logicalType]
            except Exception as exc:  # every failure is reported, not only the first
                failed[rel["to"]] = str(exc)
    checks = [[_value(c.result), c.name, c.reason] for c in run.checks]
    report = {"path": path, "result": _value(run.result), "checks": checks}
    print(json.dumps({**report, "resolved": resolved, "failed": failed}))
