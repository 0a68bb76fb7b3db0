"""Questions in plain words → semantic queries, offline: metric and dimension words
(names, labels and synonyms of the semantic layer), dimension values seen in the data,
dates and ranges, "top N", "by X", "per month/week", comparisons and shares."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from dagster_project.metadata.semantics import SemanticLayer

MONTHS = {
    m: i + 1
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ]
    )
}
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items())})
GRAIN_WORDS = {
    "day": ("daily", "per day", "by day", "each day", "day by day"),
    "week": ("weekly", "per week", "by week", "each week", "week by week", "weeks"),
    "month": ("monthly", "per month", "by month", "each month", "month by month", "months"),
    "quarter": ("quarterly", "per quarter", "by quarter", "quarters"),
    "year": ("yearly", "per year", "by year", "annual", "years"),
}
NEGATIONS = "(?:not|excluding|except|outside|other than)"
TREND_WORDS = ("trend", "over time", "evolution", "development")
SHARE_WORDS = ("share", "percentage", "percent", "% of", "proportion", "mix")
# Entities named in "top 5 stores" group by their readable name.
ENTITY_DIMENSIONS = {"store": "store_name", "product": "product_name", "customer": None}
ENTITY_WORDS = {
    "store": ("stores", "store", "shops", "shop", "branches", "branch", "outlets"),
    "product": ("products", "product", "items", "item", "articles", "skus", "best sellers"),
}
# Metric words implied by phrasing alone.
IMPLIED_METRICS = {
    "best seller": "units_sold",
    "best-seller": "units_sold",
    "bestseller": "units_sold",
    "average order": "average_order_value",
    "per order": "average_order_value",
    "how many orders": "orders",
    "how many stores": "store_count",
    "how many customers": "customer_count",
    "how many products": "product_count",
    "sold": "units_sold",
}


@dataclass
class ParsedQuestion:
    """A semantic query as plain data plus what the parser made of the words."""

    query: dict[str, Any] | None
    share: bool = False
    unmatched: list[str] = field(default_factory=list)
    reason: str = ""


def _phrases(name: str, *more: str) -> list[str]:
    return [p.lower() for p in (name.replace("_", " "), name, *more) if p]


def _find(text: str, phrase: str) -> int:
    match = re.search(r"(?<![\w])" + re.escape(phrase) + r"(?![\w])", text)
    return match.start() if match else -1


class OfflineParser:
    """Deterministic question → semantic query, using the layer and known values."""

    def __init__(self, layer: SemanticLayer, values: dict[str, list[str]]):
        self.layer = layer
        self.values = values  # dimension name → distinct values in the data
        # A bare entity word ("products", "customers") names what is grouped or
        # filtered, not the count metric whose label it is.
        entity_words = {w for words in ENTITY_WORDS.values() for w in words}
        entity_words |= {"customers", "customer", "members"}
        self.metric_phrases = sorted(
            (
                (p, m.name)
                for m in layer.metrics.values()
                for p in _phrases(m.name, m.label, *m.synonyms)
                if p not in entity_words
            ),
            key=lambda pm: -len(pm[0]),
        )
        self.metric_domains = {m.name: m.domain for m in layer.metrics.values()}
        self.dimension_domains = {d.name: d.product.split("/")[0] for d in layer.list_dimensions()}
        dims = {d.name: d for d in layer.list_dimensions() if not d.is_time}
        self.dimension_phrases = sorted(
            ((p, name) for name, d in dims.items() for p in _phrases(name, *d.synonyms)),
            key=lambda pd: -len(pd[0]),
        )

    def parse(self, question: str, context: dict[str, Any] | None = None) -> ParsedQuestion:
        text = re.sub(r"[?,!;:]|\.(?=\s|$)", " ", question.lower())
        text = " " + re.sub(r"\s+", " ", text).strip() + " "
        metrics = self._metrics(text)
        follow_up = context is not None and (
            not metrics or text.strip().startswith(("and ", "what about", "how about", "now "))
        )
        if not metrics and follow_up:
            metrics = list(context.get("metrics") or [])
        if not metrics:
            return ParsedQuestion(None, reason="no metric of the semantic layer matches")
        query: dict[str, Any] = {"metrics": metrics}
        dims, order, limit = self._grouping(text, metrics)
        grain = self._grain(text)
        filters = self._filters(_mask_entities(text), metrics)
        start, end, compare_grain = self._dates(text)
        grain = grain or compare_grain
        if follow_up:
            dims = dims or list(context.get("dimensions") or [])
            grain = grain or context.get("time_grain")
            kept = {f["dimension"] for f in filters}
            filters += [f for f in context.get("filters") or [] if f["dimension"] not in kept]
            start = start or context.get("start")
            end = end or context.get("end")
        query.update(dimensions=dims, filters=filters, time_grain=grain)
        query.update(start=start, end=end, order_by=order, limit=limit)
        share = any(_find(text, w) >= 0 for w in SHARE_WORDS)
        return ParsedQuestion({k: v for k, v in query.items() if v}, share=share)

    def _metrics(self, text: str) -> list[str]:
        found: list[tuple[int, str]] = []
        taken = _mask_entities(text)
        for phrase, name in self.metric_phrases:
            at = _find(taken, phrase)
            if at >= 0:
                found.append((at, name))
                taken = taken[:at] + "#" * len(phrase) + taken[at + len(phrase) :]
        if not found:
            for phrase, name in IMPLIED_METRICS.items():
                at = _find(text, phrase)
                if at >= 0:
                    found.append((at, name))
                    break
        if not found:
            found = self._metrics_by_words(text)
        names = {n for _, n in found}
        if "revenue" in names and (_find(text, "per order") >= 0 or _find(text, "average") >= 0):
            found = [(a, "average_order_value" if n == "revenue" else n) for a, n in found]
        if _find(text, "best seller") >= 0 or _find(text, "best sellers") >= 0:
            found = [(-1, "units_sold"), *found]
        if "average_order_value" in {n for _, n in found}:
            found = [(a, n) for a, n in found if n not in {"revenue", "orders"}]
        return list(dict.fromkeys(n for _, n in sorted(found)))

    def _metrics_by_words(self, text: str) -> list[tuple[int, str]]:
        """Metrics every word of whose (multi-word) name or label is in the question."""
        words = set(text.split())
        for phrase, name in self.metric_phrases:
            parts = phrase.split()
            if len(parts) > 1 and set(parts) <= words:
                return [(text.find(parts[0]), name)]
        return []

    def _dimension_at(self, rest: str) -> str | None:
        """The dimension named at the start of `rest` (plurals too, and "customer country"
        or "store city" with the entity word in front)."""
        for candidate in (rest, re.sub(r"^(?:customer|store|product|sales) ", "", rest)):
            for phrase, name in self.dimension_phrases:
                plural = re.escape(phrase[:-1]) + "ies" if phrase.endswith("y") else ""
                pattern = rf"(?:{re.escape(phrase)}s?{'|' + plural if plural else ''})\b"
                if re.match(pattern, candidate):
                    if candidate is not rest and rest.startswith("customer "):
                        customer = f"customer_{name}"
                        name = customer if customer in self.dimension_domains else name
                    return name
        return None

    def _grouping(self, text: str, metrics: list[str]) -> tuple[list[str], list[str], int | None]:
        dims: list[str] = []
        for match in re.finditer(
            r"\b(?:by|per|for each|each|across|split by|broken down by) ", text
        ):
            rest = text[match.end() :]
            name = self._dimension_at(rest)
            if name:
                if name not in dims:
                    dims.append(name)
            else:
                for entity, words in ENTITY_WORDS.items():
                    if any(rest.startswith(w + " ") for w in words):
                        dims.append(ENTITY_DIMENSIONS[entity])
                        break
        order: list[str] = []
        limit = None
        top = re.search(
            r"\b(top|best|highest|largest|biggest|bottom|worst|lowest|smallest)"
            r"(?: (\d+|one|three|five|ten))? (?:selling )?([a-z ]+)",
            text,
        )
        if top:
            words = {"one": 1, "three": 3, "five": 5, "ten": 10}
            before = re.search(r"\b(\d+|one|three|five|ten) (?:top|best)\b", text)
            number = top.group(2) or (before.group(1) if before else None)
            rest = top.group(3) + " "
            target = None
            for entity, names in ENTITY_WORDS.items():
                if any(rest.startswith(w + " ") for w in names):
                    target = ENTITY_DIMENSIONS[entity]
            target = target or self._dimension_at(rest)
            if "best seller" in text or "bestseller" in text:
                target = target or "product_name"
            if target:
                if target not in dims:
                    dims.insert(0, target)
                descending = top.group(1) not in {"bottom", "worst", "lowest", "smallest"}
                ranked = metrics[0]
                by = re.search(r"\bby ([a-z ]+)", text[top.start() :])
                for phrase, name in self.metric_phrases:
                    if by and name in metrics and by.group(1).startswith(phrase):
                        ranked = name
                        break
                order = [("-" if descending else "") + ranked]
                limit = (
                    int(words.get(number, number))
                    if number
                    else (1 if not re.search(r"s\b", rest.split()[0]) else 5)
                )
        else:
            ranked = re.search(r"\brank(?: the)? ([a-z ]+?) by ", text)
            if ranked and self._dimension_at(ranked.group(1) + " "):
                dims.insert(0, self._dimension_at(ranked.group(1) + " "))
            if dims and re.search(r"\b(rank|ranking|ranked|sorted|highest first)\b", text):
                order = ["-" + metrics[0]]
        return dims, order, limit

    def _grain(self, text: str) -> str | None:
        for grain, words in GRAIN_WORDS.items():
            if any(_find(text, w) >= 0 for w in words):
                return grain
        if any(_find(text, w) >= 0 for w in TREND_WORDS):
            return "month"
        return None

    def _filters(self, text: str, metrics: list[str]) -> list[dict[str, Any]]:
        """Dimension values named in the question: longest first (a store name hides its
        city); a value of several dimensions goes to the metric's own domain unless the
        question says "customer"."""
        original = text
        domain = self.metric_domains.get(metrics[0], "") if metrics else ""
        about_customers = _find(text, "customer") >= 0 or _find(text, "customers") >= 0
        matches: dict[str, list[str]] = {}
        for dim, values in self.values.items():
            for value in values:
                if len(value) > 1:
                    matches.setdefault(value.lower(), []).append(dim)
        filters: dict[str, list[str]] = {}
        for lowered in sorted(matches, key=lambda v: (-len(v), v)):
            at = _find(text, lowered)
            if at < 0:
                continue
            text = text[:at] + "#" * len(lowered) + text[at + len(lowered) :]
            dims = sorted(
                matches[lowered],
                key=lambda d: (
                    not (about_customers and d.startswith("customer")),
                    self.dimension_domains.get(d) != domain,
                    d,
                ),
            )
            value = next(v for v in self.values[dims[0]] if v.lower() == lowered)
            filters.setdefault(dims[0], []).append(value)
        out = []
        for dim, values in filters.items():
            values = sorted(set(values))
            negate = any(
                re.search(rf"\b{NEGATIONS}(?: the)? {re.escape(v.lower())}\b", original)
                for v in values
            )
            if len(values) == 1:
                out.append({"dimension": dim, "op": "!=" if negate else "=", "value": values[0]})
            else:
                out.append({"dimension": dim, "op": "not in" if negate else "in", "value": values})
        return out

    def _dates(self, text: str) -> tuple[str | None, str | None, str | None]:
        """Start and end (inclusive, ISO) and the grain of a comparison between periods."""
        periods: list[tuple[date, date, str]] = []
        for m in re.finditer(r"\b(\d{4}-\d{2}-\d{2})\b", text):
            day = date.fromisoformat(m.group(1))
            periods.append((day, day, "day"))
        month_names = "|".join(sorted(MONTHS, key=len, reverse=True))
        for m in re.finditer(rf"\b({month_names}) (\d{{4}})\b", text):
            year, month = int(m.group(2)), MONTHS[m.group(1)]
            periods.append((date(year, month, 1), _month_end(year, month), "month"))
        for m in re.finditer(r"\bq([1-4]) (\d{4})\b", text):
            year, q = int(m.group(2)), int(m.group(1))
            periods.append((date(year, 3 * q - 2, 1), _month_end(year, 3 * q), "quarter"))
        taken = re.sub(rf"\b(?:{month_names}|q[1-4]) \d{{4}}\b|\d{{4}}-\d{{2}}-\d{{2}}", "", text)
        for m in re.finditer(r"\b(20\d{2})\b", taken):
            year = int(m.group(1))
            periods.append((date(year, 1, 1), date(year, 12, 31), "year"))
        if not periods:
            return None, None, None
        start = min(p[0] for p in periods)
        end = max(p[1] for p in periods)
        is_range = re.search(r"\b(between|from|since|until|to|through)\b", text)
        compare = len(periods) > 1 and not is_range and _find(text, "vs") + _find(text, "versus")
        compare = compare or (len(periods) > 1 and re.search(r"\b(compare|compared|vs)\b", text))
        if re.search(r"\bsince\b", text) and len(periods) == 1:
            end = None
        grain = periods[0][2] if compare and periods[0][2] != "day" else None
        return start.isoformat(), end.isoformat() if end else None, grain


def _mask_entities(text: str) -> str:
    """Hide entity words that group ("top 3 stores", "revenue per store") so they are
    neither a metric ("Stores") nor a value (channel "store")."""
    entity = "|".join(w for words in ENTITY_WORDS.values() for w in words)
    return re.sub(
        rf"\b((?:top|best|bottom|worst|highest|lowest|by|per|each|every)(?: \d+)?) ({entity})\b",
        lambda m: m.group(1) + " " + "#" * len(m.group(2)),
        text,
    )


def _month_end(year: int, month: int) -> date:
    first_next = date(year + month // 12, month % 12 + 1, 1)
    return first_next - timedelta(days=1)
