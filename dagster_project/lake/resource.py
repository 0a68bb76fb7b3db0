"""The Dagster resource through which assets reach the mesh's storage."""

from __future__ import annotations

import dagster as dg

from dagster_project.core.settings import MeshSettings
from dagster_project.lake.storage import Lake


class MeshResource(dg.ConfigurableResource):
    """Where the mesh lives. `home` defaults to `MESH_HOME` (then `./.mesh`)."""

    home: str | None = None

    @property
    def settings(self) -> MeshSettings:
        return MeshSettings(home=self.home) if self.home else MeshSettings()

    @property
    def lake(self) -> Lake:
        return Lake(self.settings)
