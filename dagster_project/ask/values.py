"""How an answer's values read where people read them (CLI tables, narratives, insights):
a missing group key is a clear marker, never Python's "None"; JSON keeps null."""

from __future__ import annotations

from typing import Any

NO_VALUE = "(no value)"


def shown(value: Any) -> str:
    """A value in a sentence or a subject: as it is, a NULL as NO_VALUE."""
    return NO_VALUE if value is None else str(value)


def cell(value: Any) -> str:
    """A table cell: floats to cents with thousands separators, else `shown`."""
    return f"{value:,.2f}" if isinstance(value, float) else shown(value)
