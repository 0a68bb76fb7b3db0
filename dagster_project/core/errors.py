"""Mistakes a user can fix: what is wrong, the command that fixes it, and the exit code
`mesh` returns for it (the README's "Errors and exit codes" lists them).

Raised anywhere in the platform; `mesh` (dagster_project.app.cli) turns one into one or
two lines and its exit code, and shows the traceback only with `--debug`.
"""

from __future__ import annotations

# Exit codes scripts can rely on.
OK = 0
FAILED = 1  # a check failed, a run failed, a question or read was refused
USAGE = 2  # a user mistake: a bad name, an unknown product, bad SQL, a bad contract
ENVIRONMENT = 3  # what is around the mesh: nothing built yet, a port in use, no model endpoint
INTERNAL = 4  # a bug in Meshwork: `--debug` shows the traceback to report


class UserError(Exception):
    """A mistake the user can fix: `message` says what is wrong, `fix` what to run."""

    exit_code = USAGE

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.message, self.fix = message, fix

    def lines(self) -> list[str]:
        """The one or two lines a user reads."""
        return [self.message, *([self.fix] if self.fix else [])]


class EnvironmentProblem(UserError):
    """Something around the mesh is missing or taken (a built mesh, a port, an endpoint)."""

    exit_code = ENVIRONMENT


class NothingBuilt(EnvironmentProblem):
    """The mesh home holds no built product yet."""

    def __init__(self, home: str):
        super().__init__(
            f"Nothing is built in {home} yet.",
            "Run `mesh demo` to build the demo mesh here, or set MESH_HOME to a built one.",
        )
