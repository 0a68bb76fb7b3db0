"""Which chart an answer gets, if any: a line when its first dimension is time, bars when
it is a category, none for a single number or rows without a measure. The web page draws
the spec with Plotly, whose JavaScript ships inside the `plotly` package and is served by
`mesh serve` itself (nothing is fetched from elsewhere)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from functools import cache
from typing import Any

from plotly.offline import get_plotlyjs

# ISO dates and timestamps, and months ("2025-03"): what DuckDB and the page show for time.
_TEMPORAL = re.compile(r"^\d{4}-\d{2}(-\d{2})?([ T]\d{2}:\d{2}.*)?$")
MAX_SERIES = 8  # more lines or bar groups than this read as noise


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_temporal(value: Any) -> bool:
    return isinstance(value, date) or (isinstance(value, str) and bool(_TEMPORAL.match(value)))


def answer_chart(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any] | None:
    """`{"type": "line"|"bar", "x": column, "y": [measures], "series": column|None}` or
    None: the x axis is the first non-numeric column, the measures the numeric ones; a
    second non-numeric column splits the measure into series (one line or bar group each)."""
    if len(rows) < 2 or len(columns) < 2:
        return None  # a single number (or one row) reads best as it is
    numeric = [
        i
        for i in range(len(columns))
        if all(is_number(r[i]) or r[i] is None for r in rows) and any(is_number(r[i]) for r in rows)
    ]
    dimensions = [i for i in range(len(columns)) if i not in numeric]
    if not numeric or not dimensions:
        return None
    x = dimensions[0]
    series = dimensions[1] if len(dimensions) > 1 else None
    if series is not None and len({r[series] for r in rows}) > MAX_SERIES:
        return None  # too many groups for one picture: the table says it better
    temporal = all(is_temporal(r[x]) for r in rows if r[x] is not None)
    return {
        "type": "line" if temporal else "bar",
        "x": columns[x],
        "y": [columns[i] for i in numeric[: 1 if series is not None else MAX_SERIES]],
        "series": columns[series] if series is not None else None,
    }


@cache
def plotly_js() -> str:
    """plotly.min.js from the installed `plotly` package."""
    return get_plotlyjs()
