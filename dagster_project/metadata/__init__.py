"""Mesh metadata: the semantic layer, semantic index and discovery, lineage, doc review."""
