"""The platform's public API: every name resolves, and loads only when first used."""

import subprocess
import sys

import pytest

import dagster_project


@pytest.mark.parametrize("name", dagster_project.__all__)
def test_every_public_name_resolves_to_its_definition(name):
    value = getattr(dagster_project, name)  # a class, function or module of the platform
    assert value.__name__.rpartition(".")[2] == name
    assert getattr(value, "__module__", value.__name__).startswith("dagster_project.")


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Lakes'"):
        dagster_project.Lakes  # noqa: B018


def test_importing_the_package_imports_no_layer_and_no_dagster():
    code = "import sys, dagster_project; print(sorted(m for m in sys.modules if 'dagster' in m))"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.split() == ["['dagster_project']"]
