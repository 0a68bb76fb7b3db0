"""The platform's import rules (issue 13), read from its source by tests/imports.py."""

from tests.imports import function_level_imports, import_cycles

# What a function may import lazily: heavy dependencies that most commands never need.
HEAVY_OPTIONAL = {"pyspark", "delta", "evidently", "mlflow", "openai", "sklearn", "faker", "scipy"}
# Layers already rid of the function-level imports that only dodged cycles or start-up time.
CLEAN_LAYERS = {"app", "access", "core", "lake", "metadata", "ml"}
# The whole platform today; issue 13's goal is 15. Lower it as imports move to the top.
MOST = 41


def _layer(module_or_file: str) -> str:
    return module_or_file.replace("/", ".").split(".")[1]


def test_clean_layers_import_only_heavy_optional_dependencies_in_functions():
    lazy = [
        (f, line, name) for f, line, name in function_level_imports() if _layer(f) in CLEAN_LAYERS
    ]
    assert [i for i in lazy if i[2].split(".")[0] not in HEAVY_OPTIONAL] == []


def test_the_platform_has_at_most_MOST_function_level_imports():
    assert len(list(function_level_imports())) <= MOST


def test_no_import_cycle_but_the_one_in_products():
    # products.builder <-> products.spark: the products refactor (issue 13) removes it
    assert [c for c in import_cycles() if {_layer(m) for m in c} != {"products"}] == []


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    package = tmp_path / "dagster_project"
    (package / "a").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a" / "__init__.py").write_text("from dagster_project.a.b import x\n")
    (package / "a" / "b.py").write_text("def f():\n    from . import y\n")
    assert import_cycles(package) == [{"dagster_project.a", "dagster_project.a.b"}]
    assert list(function_level_imports(package)) == [
        ("dagster_project/a/b.py", 2, "dagster_project.a")
    ]
