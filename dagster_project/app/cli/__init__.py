"""`mesh`: the command line of the mesh (typer + rich).

Every command honours MESH_HOME (default ./.mesh) and works from the folder holding
workspace.yaml (or any folder below it).

The commands live in one module per command group (`dagster_project.app.cli.<group>`,
each with a Typer `app`). `mesh` lists them from COMMANDS and imports a group's module
only when one of its commands runs, so `mesh --help` starts without Dagster, polars and
the rest. Commands from outside the platform (governance's `mesh share`, the demo's
`mesh demo` and `mesh simulate`) register under the `meshwork.cli` entry point group; a
plugin is a Typer app (a command group) or a function (one command), and is imported,
like a group, only when it runs.

Errors are handled here, once: a `UserError` (dagster_project.core.errors) becomes its
one or two lines on stderr and its exit code; anything else is a bug, reported in one
line with exit code 4. `mesh --debug ...` shows the traceback instead.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import typer
import typer.core
import typer.main

from dagster_project.core.errors import FAILED, INTERNAL, UserError

PLUGIN_GROUP = "meshwork.cli"

# command: (group module, the first paragraph of its help), in `mesh --help` order.
# tests/unit/app/test_cli.py checks each line against the command's own help.
COMMANDS = {
    "refresh": (
        "build",
        "Build and check products now (all, a location's, or selected), with a summary.",
    ),
    "status": (
        "data",
        "Every product: rows, Delta version, last update, freshness and check results.",
    ),
    "new-domain": ("domain", "Scaffold a domain code location and register it in workspace.yaml."),
    "search": (
        "search",
        "Find products, columns and metrics by meaning, with the reason each matched.",
    ),
    "docs": ("metadata", "Generated documentation: review suggested contract updates."),
    "read": (
        "data",
        "Read a product as a role: granted columns only, PII masked, the read audited.",
    ),
    "landing": (
        "landing",
        "Landing files: list the quarantined, release one after a fix, retract a file's rows.",
    ),
    "synth": (
        "data",
        "Generate privacy-safe synthetic rows shaped like a product (Gaussian copula).",
    ),
    "scenario": (
        "models",
        "What if prices, promotions or demand change? Projected units, revenue and\n"
        "stock-outs against the baseline forecast, per category, with a short narrative.",
    ),
    "ask": (
        "ask",
        "Ask the mesh a question (or run `--sql`): answer table, narrative and the SQL.",
    ),
    "sql": (
        "ask",
        "Run one read-only SELECT over products, as a role: guarded, masked, audited.",
    ),
    "chat": (
        "ask",
        'Ask questions one after another; a follow-up ("and by region?") keeps context.',
    ),
    "serve": ("serve", "Serve the HTTP API and the web page (search, product pages, ask)."),
    "api-key": ("serve", "API keys for `mesh serve`: each key reads as one access role."),
    "runs": ("runs", "Runs in progress and their workers; --clear-dead ends the dead ones."),
}


class LazyCommand(typer.core.TyperCommand):
    """A command known by name and help; `load` builds the real one when it runs (every
    run and completion goes through `make_context`, which hands over to the real one)."""

    def __init__(self, name: str, help: str, load: Callable[[], typer.core.TyperCommand]):
        super().__init__(name, help=help)
        self.load = load

    def make_context(self, info_name: str | None, args: list[str], parent=None, **extra: Any):
        return self.load().make_context(info_name, args, parent=parent, **extra)


def group_command(module: str, name: str) -> typer.core.TyperCommand:
    """Command `name` of the Typer app of `dagster_project.app.cli.<module>`."""
    group = typer.main.get_group(import_module(f"{__name__}.{module}").app)
    return group.commands[name]


def plugin_command(name: str, target: typer.Typer | Callable[..., Any]) -> typer.core.TyperCommand:
    """`mesh <name>` from a plugin: a Typer app's commands below it, or a function as it."""
    if isinstance(target, typer.Typer):
        return typer.main.get_group(target)
    holder = typer.Typer()
    holder.command(name)(target)
    return typer.main.get_group(holder).commands[name]


def plugins() -> list[EntryPoint]:
    """The installed `meshwork.cli` entry points, by name."""
    return sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name)


def source_help(target: str) -> str:
    """The help of an entry point target (`module:attribute`) read from the module's
    source, so listing a plugin does not import it: a function's docstring, or the `help=`
    of `attribute = typer.Typer(help=...)`; empty when the source cannot be read."""
    module, _, attribute = target.partition(":")
    try:
        spec = importlib.util.find_spec(module)
        source = Path(spec.origin).read_text() if spec and spec.has_location else ""
    except (ImportError, ValueError, OSError):
        source = ""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == attribute:
            return ast.get_docstring(node) or ""
        assigned = [getattr(t, "id", None) for t in getattr(node, "targets", [])]
        if attribute in assigned and isinstance(node.value, ast.Call):
            given = {k.arg: k.value for k in node.value.keywords}
            return given["help"].value if isinstance(given.get("help"), ast.Constant) else ""
    return ""


def report(exc: Exception) -> int:
    """Print what went wrong in one or two lines on stderr; the exit code for it."""
    if isinstance(exc, UserError):
        lines, code = exc.lines(), exc.exit_code
    elif isinstance(exc, PermissionError):  # the access policy's AccessDenied: an answer
        lines, code = [f"refused: {exc}"], FAILED
    else:
        lines = [f"unexpected {type(exc).__name__}: {exc}".strip(": ")]
        lines.append("This is a bug in Meshwork; `mesh --debug ...` shows the traceback.")
        code = INTERNAL
    typer.echo("\n".join(["Error: " + lines[0], *lines[1:]]), err=True)
    return code


class MeshGroup(typer.core.TyperGroup):
    """`mesh`: the platform's commands (COMMANDS), then the plugins', none imported until
    it runs; a mistake ends in its lines and exit code (see `report`)."""

    def __init__(self, **attrs: Any):
        super().__init__(**attrs)
        for name, (module, help) in COMMANDS.items():
            self.add_command(LazyCommand(name, help, lambda m=module, n=name: group_command(m, n)))
        for ep in plugins():
            if ep.name not in self.commands:
                load = lambda ep=ep: plugin_command(ep.name, ep.load())  # noqa: E731
                self.add_command(LazyCommand(ep.name, source_help(ep.value), load))

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # usage errors and exits: printed and ended as usual
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            sys.exit(report(exc))


app = typer.Typer(cls=MeshGroup, no_args_is_help=True)


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error."),
) -> None:
    """Meshwork: an AI-driven data mesh on Dagster."""
