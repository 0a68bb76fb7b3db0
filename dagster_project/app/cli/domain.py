"""`mesh new-domain`: scaffold a domain code location."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dagster_project.access.policy import AccessPolicy
from dagster_project.app.scaffold import scaffold_domain
from dagster_project.core.contracts import load_contract
from dagster_project.core.workspace import WORKSPACE_FILE, find_root

app = typer.Typer()
console = Console()


@app.command("new-domain")
def new_domain(
    name: Annotated[str, typer.Argument(help="Domain name, snake_case.")],
    product: Annotated[str, typer.Option(help="First product of the domain.")] = "records",
    owner: Annotated[str, typer.Option(help="Owner's email.")] = "owner@example.com",
    with_sql: Annotated[
        bool, typer.Option("--sql", help="Also a SQL product over the first: <product>_summary.")
    ] = False,
) -> None:
    """Scaffold a domain code location and register it in workspace.yaml."""
    try:
        root = find_root()
    except FileNotFoundError:  # a new mesh in this folder
        root = Path.cwd()
    existed = (root / WORKSPACE_FILE).exists()
    created = scaffold_domain(root, name, product=product, owner=owner, with_sql=with_sql)
    for path in created:
        updated = path.name == WORKSPACE_FILE and existed
        console.print(f"{'updated' if updated else 'created'} {path}", soft_wrap=True)
    if not existed:
        console.print(
            f"A new mesh in {root}: its workspace.yaml holds the governance location and "
            f"{name}; run mesh commands from this folder (or below it).",
            soft_wrap=True,
        )
    contract = load_contract(root / "domains" / name / "contracts" / f"{product}.odcs.yaml")
    readers = AccessPolicy.load().readers(contract)
    granted = "; ".join(f"{role}: {how}" for role, how in readers.items()) or "no role"
    console.print(f"Who reads {contract.key} (governance/access.yaml): {granted}.")
    console.print(
        f"[green]Domain {name} added to workspace.yaml.[/green] Next: describe the data in "
        f"contracts/{product}.odcs.yaml and what can be asked about it in semantics.yaml, land "
        f"files in $MESH_HOME/landing/{name}/{product}/, run `mesh refresh --location {name}` "
        f"(or `dagster dev -w workspace.yaml`), then `mesh ask` and `mesh search`.",
        soft_wrap=True,
    )
