"""The AI providers by name, and the one the environment chooses."""

from __future__ import annotations

from dagster_project.ai.offline import OfflineProvider
from dagster_project.ai.provider import AIProvider
from dagster_project.core.settings import Settings

PROVIDERS = ("openai", "offline")


def get_provider(name: str | None = None) -> AIProvider:
    """The provider to use: `name`, else `MESH_AI_PROVIDER`, else OpenAI-compatible when
    `OPENAI_API_KEY` or `OPENAI_BASE_URL` is set, else offline."""
    settings = Settings.from_env()
    name = (name or settings.ai_provider or "").strip().lower()
    if not name:
        configured = settings.openai_api_key or settings.openai_base_url
        name = "openai" if configured else "offline"
    if name == "offline":
        return OfflineProvider()
    if name == "openai":
        from dagster_project.ai.openai_provider import OpenAIProvider

        return OpenAIProvider()
    raise ValueError(f"unknown AI provider {name!r}; use one of {', '.join(PROVIDERS)}")
