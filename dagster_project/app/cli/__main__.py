"""`python -m dagster_project.app.cli` runs `mesh`."""

from dagster_project.app.cli import app

app(prog_name="mesh")
