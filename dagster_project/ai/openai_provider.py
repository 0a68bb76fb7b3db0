"""The `openai` client against any OpenAI-compatible endpoint (OpenAI, Azure, Ollama,
llama.cpp, vLLM), with the offline provider behind it.

Configured by `Settings` (the client's own `OPENAI_*` variables, `MESH_LLM_*`). Any
endpoint error, timeout, malformed or ungrounded answer falls back to the offline answer
with a warning; after `MAX_CONSECUTIVE_FAILURES` endpoint failures in a row the provider
stops calling the endpoint for good, so a dead endpoint costs one timeout, not one per
product.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import openai
from pydantic import ValidationError

from dagster_project.ai.offline import OfflineProvider
from dagster_project.ai.provider import AIProvider, Embeddings, Generation, T, Task, normalise
from dagster_project.core.settings import Settings

MAX_CONSECUTIVE_FAILURES = 2
EMBEDDING_BATCH = 256
JSON_RULES = (
    "Answer with one JSON object that fits the JSON schema given, and nothing else. "
    "Use only the facts given; name only tables and columns that appear in them."
)


class OpenAIProvider(AIProvider):
    name = "openai"

    def __init__(
        self,
        *,
        model: str | None = None,
        embedding_model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ):
        super().__init__()
        settings = Settings.from_env()
        self.model = model or settings.llm_model
        self.embedding_model = embedding_model or settings.embedding_model
        self.client = openai.OpenAI(
            # Local servers (Ollama, llama.cpp) need no key, but the client insists on one.
            api_key=api_key or settings.openai_api_key or "not-needed",
            base_url=base_url or settings.openai_base_url,
            timeout=timeout if timeout is not None else settings.llm_timeout,
            max_retries=max_retries if max_retries is not None else settings.llm_max_retries,
        )
        self.offline = OfflineProvider()
        self.endpoint = str(self.client.base_url)
        self._failures = 0

    @property
    def available(self) -> bool:
        return self._failures < MAX_CONSECUTIVE_FAILURES

    # -- generation ----------------------------------------------------------------
    def generate(self, task: Task[T]) -> Generation[T]:
        if not self.available:
            return self._fallback(task, "endpoint disabled after repeated failures", warn=False)
        try:
            response = self._complete(task)
        except openai.OpenAIError as exc:
            self._failures += 1
            return self._fallback(task, self._endpoint_error(exc))
        self._failures = 0
        self._count(response.usage)
        content = response.choices[0].message.content if response.choices else None
        try:
            value = task.output.model_validate_json(content or "")
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem.get("loc", ())) or "(answer)"
            return self._fallback(task, f"malformed model output: {where}: {problem['msg']}")
        problems = task.check(value) if task.check else []
        if problems:
            return self._fallback(task, "ungrounded model output: " + "; ".join(problems[:3]))
        return Generation(value, self.provenance(task))

    def _complete(self, task: Task[T]) -> Any:
        """A chat completion asking for JSON of the task's schema; servers that reject
        `json_schema` response formats (older Ollama, llama.cpp) get `json_object` with the
        schema in the prompt instead."""
        schema = task.output.model_json_schema()
        messages = [
            {"role": "system", "content": f"{task.instructions}\n\n{JSON_RULES}"},
            {"role": "user", "content": json.dumps(task.inputs, default=str)},
        ]
        try:
            return self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": task.name, "schema": schema},
                },
                temperature=0,
            )
        except openai.BadRequestError:
            messages[0]["content"] += "\nJSON schema: " + json.dumps(schema)
            return self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                response_format={"type": "json_object"},
                temperature=0,
            )

    def _endpoint_error(self, exc: openai.OpenAIError) -> str:
        """Why the endpoint failed, with the fix when it cannot be reached at all."""
        reason = f"endpoint error: {type(exc).__name__}: {exc}"
        if isinstance(exc, openai.APIConnectionError):
            reason += (
                f" (nothing answers at {self.endpoint}: start the model server, or unset"
                " OPENAI_BASE_URL and MESH_AI_PROVIDER to use the offline provider)"
            )
        return reason

    def _fallback(self, task: Task[T], reason: str, *, warn: bool = True) -> Generation[T]:
        self.usage.fallbacks += 1
        if warn:
            self.warn(
                f"{self.model} at {self.endpoint} failed on {task.name}: {reason}; "
                "using the offline provider"
            )
        return self.offline.generate(task, fallback=reason)

    def _count(self, usage: Any) -> None:
        self.usage.calls += 1
        if usage is not None:
            self.usage.prompt_tokens += usage.prompt_tokens or 0
            self.usage.completion_tokens += getattr(usage, "completion_tokens", 0) or 0

    # -- embeddings ------------------------------------------------------------------
    def embed(self, texts: list[str]) -> Embeddings:
        if not self.available:
            return self.offline.embed(texts, fallback="endpoint disabled after repeated failures")
        rows: list[list[float]] = []
        try:
            for start in range(0, len(texts), EMBEDDING_BATCH):
                batch = texts[start : start + EMBEDDING_BATCH]
                response = self.client.embeddings.create(model=self.embedding_model, input=batch)
                data = sorted(response.data, key=lambda d: d.index)
                if len(data) != len(batch):
                    raise ValueError(f"{len(data)} embeddings for {len(batch)} texts")
                rows.extend(d.embedding for d in data)
                self.usage.calls += 1
                self.usage.embedding_tokens += response.usage.prompt_tokens if response.usage else 0
            vectors = np.asarray(rows, dtype=np.float32)
            if vectors.ndim != 2 or not np.isfinite(vectors).all():
                raise ValueError("embeddings are not a finite matrix")
        except (openai.OpenAIError, ValueError, TypeError) as exc:
            if isinstance(exc, openai.OpenAIError):
                self._failures += 1
            self.usage.fallbacks += 1
            reason = f"embedding error: {type(exc).__name__}: {exc}"
            if isinstance(exc, openai.OpenAIError):
                reason = "embedding " + self._endpoint_error(exc)
            self.warn(f"{self.embedding_model} at {self.endpoint}: {reason}; using offline vectors")
            return self.offline.embed(texts, fallback=reason)
        self._failures = 0
        return Embeddings(normalise(vectors), self.name, self.embedding_model)
