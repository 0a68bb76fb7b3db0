"""Narrative insights from each domain's semantic layer: how its headline metrics moved in
the last four weeks against the four weeks before, the values of its mover dimensions
that moved most, and the lowest values of a metric now (what `insights` in a domain's
semantics.yaml declares, or its defaults). Every number comes from a semantic query (for
people through `Asker`, so the role's grants and masks apply); the text is a template
over those numbers, so it cannot state anything the data does not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from dagster_project.ask.values import shown
from dagster_project.metadata.semantics import InsightsSpec, SemanticLayer

if TYPE_CHECKING:  # the products' insights need no question engine
    from dagster_project.ask.engine import Asker

PERIOD_DAYS = 28
TOP_MOVERS = 3

Query = Callable[[dict[str, Any]], list[tuple]]  # a semantic query -> its rows
Window = tuple[date, date]


def _change(before: Any, after: Any) -> float | None:
    if not isinstance(before, int | float) or not before or after is None:
        return None
    return (after - before) / abs(before)


def _fmt(value: Any) -> str:
    if value is None:
        return shown(value)
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"


def periods(query: Query, metric: str) -> tuple[Window, Window] | None:
    """The last PERIOD_DAYS days with `metric` and the PERIOD_DAYS before them."""
    last = query({"metrics": [metric], "time_grain": "day", "order_by": ["-day"], "limit": 1})
    if not last or last[0][0] is None:
        return None
    end = last[0][0]
    current = (end - timedelta(days=PERIOD_DAYS - 1), end)
    previous = (current[0] - timedelta(days=PERIOD_DAYS), current[0] - timedelta(days=1))
    return previous, current


def _window(query: dict[str, Any], window: Window) -> dict[str, Any]:
    return {**query, "start": window[0].isoformat(), "end": window[1].isoformat()}


@dataclass
class DomainFacts:
    """One domain's insights as numbers (what the Markdown and the rows are made of)."""

    spec: InsightsSpec
    previous: Window | None = None
    current: Window | None = None
    headline: list[dict[str, Any]] = field(default_factory=list)
    movers: list[dict[str, Any]] = field(default_factory=list)
    lowest: list[dict[str, Any]] = field(default_factory=list)


def domain_facts(query: Query, layer: SemanticLayer, spec: InsightsSpec) -> DomainFacts:
    """Headline changes, top movers and lowest values for one domain's spec."""
    facts = DomainFacts(spec)
    windows = periods(query, spec.headline[0]) if spec.headline else None
    if windows is not None:
        facts.previous, facts.current = windows
        metrics = list(spec.headline)
        before = query(_window({"metrics": metrics}, facts.previous))[0]
        after = query(_window({"metrics": metrics}, facts.current))[0]
        for metric, b, a in zip(metrics, before, after, strict=True):
            facts.headline.append(
                {"domain": spec.domain, "metric": metric, "before": b, "after": a,
                 "change": _change(b, a)}
            )  # fmt: skip
        for dimension in spec.movers if spec.mover_metric else ():
            facts.movers += _movers(query, spec.mover_metric, dimension, windows)
    if spec.lowest is not None:
        low = spec.lowest
        rows = query(
            {"metrics": [low.metric], "dimensions": [low.dimension], "order_by": [low.metric],
             "limit": low.limit}
        )  # fmt: skip
        facts.lowest = [
            {"metric": low.metric, "dimension": low.dimension, "value": r[0], "amount": r[1]}
            for r in rows
        ]
    return facts


def _movers(query: Query, metric: str, dimension: str, windows: tuple[Window, Window]):
    semantic = {"metrics": [metric], "dimensions": [dimension]}
    before = dict(query(_window(semantic, windows[0])))
    after = dict(query(_window(semantic, windows[1])))
    movers = [
        {"metric": metric, "dimension": dimension, "value": v, "before": before[v], "after": a,
         "change": _change(before[v], a)}
        for v, a in after.items()
        if _change(before.get(v), a) is not None
    ]  # fmt: skip
    movers.sort(key=lambda m: (-abs(m["change"]), str(m["value"])))
    return movers[:TOP_MOVERS]


def headline_lines(facts: DomainFacts, layer: SemanticLayer) -> list[str]:
    """'The last 28 days (...) against the 28 days before:', a line per metric, then a
    line per mover dimension."""
    current = facts.current
    lines = [
        f"The last {PERIOD_DAYS} days ({current[0]} to {current[1]}) against the "
        f"{PERIOD_DAYS} days before:"
    ]
    for h in facts.headline:
        moved = f" ({h['change']:+.1%})" if h["change"] is not None else ""
        title = layer.metrics[h["metric"]].title
        lines.append(f"- {title}: {_fmt(h['after'] or 0)} after {_fmt(h['before'] or 0)}{moved}")
    lines.append("")
    for dimension in facts.spec.movers:
        movers = [m for m in facts.movers if m["dimension"] == dimension]
        if movers:
            title = layer.metrics[movers[0]["metric"]].title.lower()
            text = ", ".join(f"{shown(m['value'])} {m['change']:+.1%}" for m in movers)
            lines.append(f"Top movers in {title} by {dimension}: {text}.")
    return lines


def lowest_lines(facts: DomainFacts, layer: SemanticLayer) -> list[str]:
    low = facts.spec.lowest
    title = layer.metrics[low.metric].title
    items = ", ".join(f"{shown(r['value'])} ({_fmt(r['amount'])})" for r in facts.lowest)
    return ["", f"## {low.title or f'Lowest {title.lower()}'}", "",
            f"Lowest {title.lower()} now: {items}."]  # fmt: skip


def _built(asker: Asker, spec: InsightsSpec) -> bool:
    products = {asker.layer.metrics[m].product for m in spec.metrics if m in asker.layer.metrics}
    return bool(products) and all(asker.lake.exists(p) for p in products)


def mesh_insights(asker: Asker) -> dict[str, Any]:
    """Every domain's insights as data and as one Markdown page (domains whose products
    are not built yet are left out)."""
    layer = asker.layer

    def query(semantic: dict[str, Any]) -> list[tuple]:
        return [tuple(r) for r in asker.answer_query(semantic).rows]

    found = [domain_facts(query, layer, s) for s in layer.insights_specs() if _built(asker, s)]
    lines = ["# What changed", ""]
    compared = [f for f in found if f.current is not None]
    for i, facts in enumerate(compared):
        if i:  # the first domain's comparison opens the page; others get a heading
            lines += ["", f"## {facts.spec.domain.replace('_', ' ').capitalize()}", ""]
        lines += headline_lines(facts, layer)
    if not compared:
        lines.append("Nothing dated has landed yet: nothing to compare.")
    for facts in found:
        if facts.spec.lowest is not None:
            lines += lowest_lines(facts, layer)
    return {
        "headline": [h for f in found for h in f.headline],
        "movers": [m for f in found for m in f.movers],
        "lowest": [r for f in found for r in f.lowest],
        "markdown": "\n".join(lines) + "\n",
    }
