"""The offline provider: no network, no weights; grounded answers from templates.

Generation runs the task's own template over the same facts a model would have seen
(contract, statistics, lineage, semantic layer), so the output is deterministic and
names only what exists. Embeddings are hashed word stems plus character n-grams:
lexical, not semantic, but stable across processes and robust to typos; discovery
adds synonyms and the semantic layer on top.
"""

from __future__ import annotations

import numpy as np

from dagster_project.ai.provider import AIProvider, Embeddings, Generation, T, Task
from dagster_project.ai.text import char_ngrams, hashed_vector, terms

OFFLINE_MODEL = "meshwork-templates-v1"
OFFLINE_EMBEDDING_MODEL = "hashed-char-ngrams-v1"
EMBEDDING_DIM = 4096


class OfflineProvider(AIProvider):
    name = "offline"
    model = OFFLINE_MODEL
    embedding_model = OFFLINE_EMBEDDING_MODEL

    def generate(self, task: Task[T], fallback: str | None = None) -> Generation[T]:
        value = task.output.model_validate(task.offline(task.inputs))
        return Generation(value, self.provenance(task, fallback))

    def embed(self, texts: list[str], fallback: str | None = None) -> Embeddings:
        vectors = np.stack([embed_text(t) for t in texts]) if texts else np.zeros((0, 1))
        return Embeddings(vectors, self.name, self.embedding_model, fallback)


def embed_text(text: str) -> np.ndarray:
    """Word stems count double: a shared word says more than shared letters."""
    stems = terms(text)
    return hashed_vector(
        [f"w:{s}" for s in stems for _ in (0, 1)] + char_ngrams(text), EMBEDDING_DIM
    )
