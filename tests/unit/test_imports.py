"""The platform's import rules (issue 13), read from its source by tests/imports.py."""

import ast

from tests.factories import REPO
from tests.imports import function_level_imports, import_cycles

# What a function may import lazily: a heavy dependency most commands never need, or a
# platform module that imports one at its top (e.g. products.spark for pyspark).
HEAVY_OPTIONAL = {
    "pyspark",
    "delta",
    "evidently",
    "mlflow",
    "openai",
    "sklearn",
    "faker",
    "scipy",
    "fairlearn",
}
# Lazy imports of anything else, left to their owners' refactors; shrink it, never grow it.
LEFT: set[tuple[str, str]] = set()
# Function-level imports in the whole platform today (issue 13: at most 15).
MOST = 15


def _top_level_packages(module: str) -> set[str]:
    path = REPO.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    body = ast.parse(path.read_text()).body
    imports = [n for n in body if isinstance(n, ast.Import | ast.ImportFrom)]
    return {
        name.split(".")[0]
        for n in imports
        for name in ([a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""])
    }


def _heavy(name: str) -> bool:
    if name.startswith("dagster_project."):
        return bool(_top_level_packages(name) & HEAVY_OPTIONAL)
    return name.split(".")[0] in HEAVY_OPTIONAL


def test_functions_import_only_heavy_optional_dependencies():
    lazy = [(file, name) for file, _, name in function_level_imports() if not _heavy(name)]
    assert set(lazy) <= LEFT, "import these at module top"


def test_the_platform_has_at_most_MOST_function_level_imports():
    assert len(list(function_level_imports())) <= MOST


def test_the_platform_has_no_import_cycle():
    assert import_cycles() == []


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    package = tmp_path / "dagster_project"
    (package / "a").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a" / "__init__.py").write_text("from dagster_project.a.b import x\n")
    (package / "a" / "b.py").write_text("def f():\n    from . import y\n")
    assert import_cycles(package) == [{"dagster_project.a", "dagster_project.a.b"}]
    found = list(function_level_imports(package))
    assert found == [("dagster_project/a/b.py", 2, "dagster_project.a")]
