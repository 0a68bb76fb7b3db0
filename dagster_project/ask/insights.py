"""Narrative insights computed on request from the semantic layer: how the headline
metrics moved in the last four weeks against the four weeks before, the top movers by
region and category, and stock-out risks. Every number comes from a semantic query run
through `Asker` (so the role's grants and masks apply); the text is a template over
those numbers, so it cannot state anything the data does not."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from dagster_project.ask.engine import Asker

HEADLINE = ("revenue", "orders", "units_sold", "average_order_value")
MOVER_DIMENSIONS = ("region", "category")
PERIOD_DAYS = 28
LOW_STOCK_ITEMS = 5


def _change(before: Any, after: Any) -> float | None:
    if not isinstance(before, int | float) or not before or after is None:
        return None
    return (after - before) / abs(before)


def _fmt(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"


def periods(asker: Asker) -> tuple[tuple[date, date], tuple[date, date]] | None:
    """The last PERIOD_DAYS days with sales and the PERIOD_DAYS before them."""
    last = asker.answer_query(
        {"metrics": ["revenue"], "time_grain": "day", "order_by": ["-day"], "limit": 1}
    )
    if not last.rows:
        return None
    end = last.rows[0][0]
    current = (end - timedelta(days=PERIOD_DAYS - 1), end)
    previous = (current[0] - timedelta(days=PERIOD_DAYS), current[0] - timedelta(days=1))
    return previous, current


def _window(query: dict[str, Any], window: tuple[date, date]) -> dict[str, Any]:
    return {**query, "start": window[0].isoformat(), "end": window[1].isoformat()}


def mesh_insights(asker: Asker) -> dict[str, Any]:
    """Insights as data and as Markdown (sections skip metrics the layer lacks)."""
    facts: dict[str, Any] = {"headline": [], "movers": [], "low_stock": []}
    metrics = [m for m in HEADLINE if m in asker.layer.metrics]
    lines = ["# What changed", ""]
    windows = periods(asker) if "revenue" in metrics else None
    if windows is None:
        lines.append("No sales yet: nothing to compare.")
    else:
        previous, current = windows
        before = asker.answer_query(_window({"metrics": metrics}, previous)).rows[0]
        after = asker.answer_query(_window({"metrics": metrics}, current)).rows[0]
        lines.append(
            f"The last {PERIOD_DAYS} days ({current[0]} to {current[1]}) against the "
            f"{PERIOD_DAYS} days before:"
        )
        for metric, b, a in zip(metrics, before, after, strict=True):
            change = _change(b, a)
            facts["headline"].append({"metric": metric, "before": b, "after": a, "change": change})
            moved = f" ({change:+.1%})" if change is not None else ""
            title = asker.layer.metrics[metric].title
            lines.append(f"- {title}: {_fmt(a or 0)} after {_fmt(b or 0)}{moved}")
        lines.append("")
        for dimension in MOVER_DIMENSIONS:
            facts["movers"] += _movers(asker, dimension, previous, current, lines)
    if "stock_on_hand" in asker.layer.metrics:
        low = asker.answer_query(
            {
                "metrics": ["stock_on_hand"],
                "dimensions": ["product_name"],
                "order_by": ["stock_on_hand"],
                "limit": LOW_STOCK_ITEMS,
            }
        )
        facts["low_stock"] = [{"product": r[0], "on_hand": r[1]} for r in low.rows]
        items = ", ".join(f"{r[0]} ({_fmt(r[1])})" for r in low.rows)
        lines += ["", "## Stock-out risks", "", f"Lowest stock on hand now: {items}."]
    return {**facts, "markdown": "\n".join(lines) + "\n"}


def _movers(asker: Asker, dimension: str, previous, current, lines: list[str]) -> list[dict]:
    query = {"metrics": ["revenue"], "dimensions": [dimension]}
    before = dict(asker.answer_query(_window(query, previous)).rows)
    after = dict(asker.answer_query(_window(query, current)).rows)
    movers = [
        {
            "dimension": dimension,
            "value": v,
            "before": before[v],
            "after": a,
            "change": _change(before[v], a),
        }
        for v, a in after.items()
        if _change(before.get(v), a) is not None
    ]
    movers.sort(key=lambda m: (-abs(m["change"]), str(m["value"])))
    if movers:
        text = ", ".join(f"{m['value']} {m['change']:+.1%}" for m in movers[:3])
        lines.append(f"Top movers in revenue by {dimension}: {text}.")
    return movers[:3]
