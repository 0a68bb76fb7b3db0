"""The Dagster resource through which assets reach the AI provider."""

from __future__ import annotations

import dagster as dg

from dagster_project.ai.provider import AIProvider
from dagster_project.ai.providers import get_provider
from dagster_project.core.settings import Settings


class AIResource(dg.ConfigurableResource):
    """Which provider generates text and what it may see.

    `provider`: `auto` (OpenAI-compatible when `OPENAI_API_KEY` or `OPENAI_BASE_URL` is
    set, else offline), `openai` or `offline`. `share_samples`: also send sample values
    of non-PII columns to a remote model (default: schema and aggregate statistics
    only; `MESH_AI_SHARE_SAMPLES=1` turns it on). PII values are never sent."""

    provider: str = "auto"
    share_samples: bool | None = None

    def get_provider(self, log=None) -> AIProvider:
        provider = get_provider(None if self.provider == "auto" else self.provider)
        if log is not None:
            provider.log = log
        return provider

    @property
    def samples_allowed(self) -> bool:
        if self.share_samples is not None:
            return self.share_samples
        return Settings.from_env().ai_share_samples
