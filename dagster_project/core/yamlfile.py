"""YAML documents read one way everywhere: libyaml's parser when PyYAML has it (the
pure-Python one is ten times slower: ~1 s of `mesh ask` over the workspace's files)."""

from __future__ import annotations

from typing import Any

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """The document in `text` (safe: plain data only); None for an empty text."""
    return yaml.load(text, Loader=LOADER)
