"""The platform's imports read from its source (AST): function-level imports, and
import cycles between its modules.

    python -m tests.imports     # every function-level import of dagster_project/
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import networkx as nx

from tests.factories import REPO

PLATFORM = REPO / "dagster_project"


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The absolute names an import statement imports (a module, or names from one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".")[: len(module.split(".")) - node.level + is_package]
        base = ".".join([*package, *([node.module] if node.module else [])])
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def function_level_imports(root: Path = PLATFORM) -> Iterator[tuple[str, int, str]]:
    """(file, line, imported module) of every import statement inside a function."""
    for path in sorted(root.rglob("*.py")):
        found = set()
        for function in ast.walk(ast.parse(path.read_text())):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(function):
                    if isinstance(node, ast.Import | ast.ImportFrom):
                        module = _module_name(path, root)
                        name = _imported(node, module, path.name == "__init__.py")[0]
                        found.add((str(path.relative_to(root.parent)), node.lineno, name))
        yield from sorted(found)


def import_cycles(root: Path = PLATFORM) -> list[set[str]]:
    """Sets of the platform's modules that import each other (at any level)."""
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph = nx.DiGraph()
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name in _imported(node, module, path.name == "__init__.py"):
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name not in {module, root.name}:  # the package root: lazy names
                    graph.add_edge(module, name)
    return [c for c in nx.strongly_connected_components(graph) if len(c) > 1]


if __name__ == "__main__":
    imports = list(function_level_imports())
    for file, line, name in imports:
        print(f"{file}:{line}\t{name}")
    print(f"{len(imports)} function-level imports; cycles: {import_cycles()}")
