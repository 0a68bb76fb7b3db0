"""Product-to-product lineage as the workspace's asset graph declares it."""

from __future__ import annotations

import dagster as dg

from dagster_project.core.workspace import load_definitions, mesh_assets


def product_lineage(definitions: dict[str, dg.Definitions] | None = None) -> list[tuple[str, str]]:
    """(upstream, downstream) `domain/product` pairs of every location's assets, sorted."""
    definitions = definitions if definitions is not None else load_definitions()
    edges = set()
    for asset in mesh_assets(definitions):
        for key in asset.keys:
            for dep in asset.asset_deps.get(key, ()):
                if dep != key:
                    edges.add((dep.to_user_string(), key.to_user_string()))
    return sorted(edges)
