"""Generative AI for the mesh: one provider interface, an OpenAI-compatible client and an
offline default that needs no network and no model weights."""

from __future__ import annotations

from dagster_project.ai.offline import OfflineProvider
from dagster_project.ai.provider import (
    AIProvider,
    Embeddings,
    Generation,
    Provenance,
    Task,
    Usage,
    inputs_hash,
)
from dagster_project.ai.providers import get_provider

__all__ = [
    "AIProvider",
    "Embeddings",
    "Generation",
    "OfflineProvider",
    "Provenance",
    "Task",
    "Usage",
    "get_provider",
    "inputs_hash",
]
