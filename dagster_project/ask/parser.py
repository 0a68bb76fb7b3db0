"""Questions in plain words → semantic queries, offline and compositional.

1. Time expressions are read by a small grammar (`ask.dates`) and taken out.
2. The rest is tokenized and covered, longest phrase first, by the layer's vocabulary
   (`ask.lexicon`: metric, dimension, entity and product names and synonyms, values of
   low-cardinality dimensions) and by English function words (by, top, more than...).
3. Every content word must be accounted for: a word nothing explains makes the question
   `unanswerable`, with the words named.
4. The phrases are assembled into a semantic query by their roles (grouping after "by",
   the target of "top 3" or "which ... the most", a comparison's subject, a filter value,
   the thing counted by "how many"). Where a phrase has several meanings (a value present
   in two columns, an entity counted in several models) every reading is compiled and
   scored; a tie between readings that differ is a `clarify` with the choices.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from dagster_project.ask.dates import TimeSpec, extract
from dagster_project.ask.lexicon import (
    COUNT_WORDS,
    DISTINCT,
    FILLER,
    GRAINS,
    GRAMMAR,
    JUDGED,
    NUMBER_WORDS,
    UNITS,
    WORSE_WHEN_MORE,
    Lexicon,
    Meaning,
    Span,
    adjectives,
    number,
    phrase_key,
    spell_numbers,
    stem,
    tokens,
)
from dagster_project.ask.semantic_sql import (
    Compiler,
    SemanticQuery,
    SemanticQueryError,
    ratio_parts,
    with_derived_metrics,
)
from dagster_project.metadata.semantics import Dimension, Entity, Metric, SemanticLayer

ANSWERED, CLARIFY, UNANSWERABLE = "answered", "clarify", "unanswerable"
CMP = {"gt": ">", "lt": "<", "gte": ">=", "lte": "<=", "eq": "="}
PHRASES = {  # multi-word function phrases, joined before tokenizing
    r"\bat least\b": "atleast",
    r"\bno less than\b": "atleast",
    r"\bat most\b": "atmost",
    r"\bno more than\b": "atmost",
    r"\bup to\b": "atmost",
    r"\bover time\b": "trend",
    r"\bother than\b": "not",
    r"^(?:the )?(?:total )?(?:number|count) of\b": "how many",  # at the start: a count
}
MAX_READINGS = 32
RANKING = {"top", "bottom"}
JOINS = {"and", "vs"}  # "North and South", "online or store", "online versus store"
MAX_PHRASES = 40  # a question longer than this is several questions
MAX_WORDS = 120  # read no further: a longer text is not one question (and costs to parse)


@dataclass
class ParsedQuestion:
    """A semantic query as plain data plus what the parser made of the words."""

    query: dict[str, Any] | None
    share: bool = False
    unmatched: list[str] = field(default_factory=list)
    reason: str = ""
    status: str = ANSWERED
    choices: list[str] = field(default_factory=list)
    listing: bool = False
    interpretation: str = ""
    count: bool = False  # the answer is how many rows (entities) pass the query
    averaged: bool = False  # the metrics per period of its time grain, averaged over them
    corrections: dict[str, str] = field(default_factory=dict)  # typo → word read


def _clarify(choices: list[str], reason: str, unmatched: list[str] | None = None) -> ParsedQuestion:
    """A question to ask back: which of `choices` the words mean."""
    return ParsedQuestion(
        None, unmatched=unmatched or [], reason=reason, status=CLARIFY, choices=choices
    )


def _unanswerable(reason: str, unmatched: list[str] | None = None) -> ParsedQuestion:
    return ParsedQuestion(None, unmatched=unmatched or [], reason=reason, status=UNANSWERABLE)


@dataclass
class Item:
    """One phrase of the question with the role the assembler gives it."""

    kind: str  # metric dimension entity product value num grain g unknown
    words: str
    name: str = ""
    value: Any = None
    plural: bool = False
    options: list[Meaning] = field(default_factory=list)
    used: bool = False
    aside: list[Meaning] = field(default_factory=list)  # values the phrase may also be
    distinct: bool = False  # after "distinct", "different": the thing is to be counted


@dataclass
class Draft:
    """A semantic query under construction, with the score of its reading."""

    metrics: list[str] = field(default_factory=list)
    dims: list[str] = field(default_factory=list)
    filters: list[dict[str, Any]] = field(default_factory=list)
    having: list[dict[str, Any]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    limit: int | None = None
    grain: str | None = None
    share: bool = False
    listing: bool = False
    count: bool = False
    averaged: bool = False
    score: float = 0.0
    events: frozenset[str] = frozenset()  # the models a verb of the question points to
    problems: list[str] = field(default_factory=list)


class OfflineParser:
    """Deterministic question → semantic query, from the layer and known values."""

    def __init__(
        self,
        layer: SemanticLayer,
        values: dict[str, list[str]],
        anchors: dict[str, date] | None = None,
    ):
        self.layer = with_derived_metrics(layer)
        self.values = values
        self.anchors = anchors or {}
        self.lexicon = Lexicon(layer, values)
        self.compiler = Compiler(self.layer)
        self.dims = {d.name: d for d in self.layer.list_dimensions()}

    # -- words ---------------------------------------------------------------------------
    def items(self, text: str) -> tuple[list[Item], list[str]]:
        """The question's phrases and the words nothing explains."""
        words = tokens(text)
        light = FILLER | self.lexicon.event_verbs.keys()  # "aired": the event, dated
        at = [i for i, t in enumerate(words) if t.text not in light and t.stem not in FILLER]
        content = [words[i] for i in at]
        counts = [
            k for k in range(1, len(at)) if {t.stem for t in words[at[k - 1] : at[k]]} & COUNT_WORDS
        ]
        spans = self.lexicon.spans(content, counts)
        items = []
        for span in spans:  # the fillers around a phrase choose among its meanings
            low = at[span.start - 1] + 1 if span.start else 0
            high = at[span.end] if span.end < len(at) else len(words)
            asked = [t.text for t in content[max(span.start - 2, 0) : span.start]]
            counts = asked == ["how", "many"]  # "how many queens": "the number of queens"
            span.meanings = self.lexicon.widest(span, words[low:high], at[span.start] - low, counts)
            items.append(self._item(span))
            items[-1].distinct = any(t.text in DISTINCT for t in words[low : at[span.start]])
        for i, span in enumerate(spans):  # "the store channel", "not store": a value after all
            spelled = [m for m in span.meanings if m.kind == "value"]
            values = _value_reading(items, i, spelled)
            if items[i].kind == "entity":
                items[i].aside = spelled
            if values and items[i].kind != "value":
                first = values[0]
                items[i] = Item("value", span.words, first.name, first.value, span.plural, values)
        for i, item in enumerate(items):  # "bottom 2", "top 3": ranking, whatever else
            word = GRAMMAR.get(item.words)  # the layer calls a word of that spelling
            if word in RANKING and i + 1 < len(items) and items[i + 1].kind == "num":
                items[i] = Item("g", item.words, name=word)
        for i, item in enumerate(items):  # "season 1": the season coded S01
            code = self._numbered(items[i - 1], item.value) if i and item.kind == "num" else None
            if code is not None:
                items[i] = Item("value", item.words, code.name, code.value, options=[code])
        ranks = any(it.kind == "g" and it.name in RANKING for it in items)
        for i, item in enumerate(items):  # "200 units", "7 days": a unit after a number
            after_number = i and items[i - 1].kind == "num" and _is_unit(item.words)
            before_metric = i + 1 < len(items) and items[i + 1].kind == "metric"
            ranked_grain = ranks and item.kind == "grain"  # "which 3 days had the most ..."
            if (
                after_number
                and not ranked_grain
                and (item.kind in {"unknown", "grain"} or before_metric)
            ):
                item.kind = "unit"
        free = {it.words for it in items if it.kind == "unknown"}
        if free:
            stems = {t.stem for t in content}
            for key, meaning in self.lexicon.scattered(stems, {_stem(w) for w in free}):
                items = _merge_scattered(items, key, meaning)
        for item in items:
            head = self.lexicon.heads.get(_stem(item.words)) if item.kind == "unknown" else None
            if head:
                item.kind, item.name, item.options = "metric", head.name, [head]
        unknown = [it.words for it in items if it.kind == "unknown"]
        return [it for it in items if it.kind != "unit"], unknown

    def _item(self, span: Span) -> Item:
        word = span.words
        if span.meanings:
            return _meaning_item(span)
        if number(word) is not None:
            return Item("num", word, value=number(word))
        if word in NUMBER_WORDS:
            return Item("num", word, value=NUMBER_WORDS[word])
        if word in GRAINS or _stem(word) in GRAINS:
            return Item("grain", word, name=GRAINS.get(word) or GRAINS[_stem(word)])
        if word in GRAMMAR:
            return Item("g", word, name=GRAMMAR[word])
        return Item("unknown", word, plural=span.plural)

    # -- questions -------------------------------------------------------------------------
    def parse(self, question: str, context: dict[str, Any] | None = None) -> ParsedQuestion:
        text = question.lower()
        for pattern, joined in PHRASES.items():
            text = re.sub(pattern, joined, text)
        words = len(text.split())
        if words > MAX_WORDS:
            return _unanswerable(f"the question has {words} words; ask at most {MAX_WORDS} at once")
        known = {  # attributes an adjective may grade ("expensive": a price, "older": an
            key[0]  # age, a dimension or a metric's column, "average age" named "age")
            for key, meanings in self.lexicon.phrases.items()
            if len(key) == 1 and any(m.kind in {"dimension", "metric"} for m in meanings)
        }
        text, time = extract(adjectives(spell_numbers(text), known), self.lexicon.words)
        items, unknown = self.items(text)
        corrections: dict[str, str] = {}
        if unknown:
            corrections, ambiguous = self._typos(unknown)
            if ambiguous:
                return _clarify(ambiguous, "a word is close to several the layer knows")
            if corrections and len(corrections) == len(unknown):
                for wrong, right in corrections.items():
                    text = re.sub(rf"\b{re.escape(wrong)}\b", right, text)
                items, unknown = self.items(text)
        if unknown:
            begun, ask_back = self._values_begun(unknown, question)
            if ask_back:
                reason = "a word begins a known value; say whether you mean it"
                return _clarify(ask_back, reason, unknown)
            for short, value in begun.items():
                text = re.sub(rf"\b{re.escape(short)}\b", value.lower(), text)
            if begun:
                corrections.update(begun)
                items, unknown = self.items(text)
        partial = self._partial_metrics(unknown)
        if partial:
            reason = "a word is part of the names of several metrics; say which"
            return _clarify(partial, reason, unknown)
        if len(items) > MAX_PHRASES:
            return _unanswerable(
                f"the question has {len(items)} parts; ask at most {MAX_PHRASES} at once"
            )
        if unknown:
            words = ", ".join(f"'{w}'" for w in unknown)
            return _unanswerable(f"nothing in the semantic layer matches {words}", unknown)
        follow_up = context is not None and (
            not any(it.kind == "metric" for it in items)
            or question.lower().strip().startswith(("and ", "what about", "how about", "now "))
        )
        readings, events = [], self.lexicon.event_models(text)
        for choice in self._choices(items):
            readings += self._read(choice, time, (follow_up and context) or None, events)
            ignored = _ignored_value(choice)  # "online, store": the store, or a channel?
            if ignored is not None:
                again = [replace(it, used=False) for it in choice]
                again[ignored] = _as_value(choice[ignored])
                readings += self._read(again, time, (follow_up and context) or None, events)
        parsed = self._decide(readings)
        corrections = {**time.corrections, **corrections}
        if corrections and parsed.status == ANSWERED:
            said = ", ".join(f"'{w}' read as '{r}'" for w, r in corrections.items())
            parsed.corrections, parsed.interpretation = (
                corrections,
                f"{parsed.interpretation} ({said})",
            )
        return parsed

    def _numbered(self, named: Item, n: Any) -> Meaning | None:
        """The one value of the dimension just named (or the entity's key) coded with the
        number: 'season 1' is S01, 'week 3' W3 or 'Week 03'; none when no value or
        several are, or the number is not a whole one."""
        if not isinstance(n, int) or isinstance(n, bool):
            return None
        if named.kind == "dimension":
            names = {named.name}
        elif named.kind == "entity":
            key = self.layer.entities[named.name].key
            names = {d.name for d in self.layer.list_dimensions() if d.column == key}
        else:
            return None
        code = re.compile(rf"[A-Za-z]{{1,4}}[ _-]?0*{n}")
        found = {(d, v) for d in names for v in self.values.get(d, []) if code.fullmatch(v)}
        values = {v for _, v in found}
        if len(values) != 1:
            return None
        name = sorted(d for d, _ in found)[0]
        return Meaning("value", name, values.pop())

    def _values_begun(self, unknown: list[str], question: str) -> tuple[dict[str, str], list[str]]:
        """'United' for 'United Air Lines Inc.', 'Bianca' for 'Bianca Del Rio': unknown
        words that each begin exactly one known value of several words. Read as that
        value when written with a capital inside the question (a name), else asked back;
        nothing when any unknown word begins no value or several."""
        inside = {w.strip("?!.,;:'\"").lower() for w in question.split()[1:] if w[:1].isupper()}
        read, ask = {}, []
        for word in unknown:
            begun = {
                (dim, value)
                for dim, values in self.values.items()
                for value in values
                if len(value.split()) > 1 and value.split()[0].lower().strip(",.") == word
            }
            if len({value for _, value in begun}) != 1:
                return {}, []
            value = next(iter(begun))[1]
            if word in inside:
                read[word] = value
            else:
                dims = ", ".join(sorted(dim for dim, _ in begun))
                ask.append(f"'{word}' as {value!r} ({dims})")
        return read, ask

    def _partial_metrics(self, unknown: list[str]) -> list[str]:
        """'delay' when the layer knows 'arrival delay' and 'departure delay': the metrics
        each unknown word is part of, when every one is part of two or more."""
        choices = []
        for word in unknown:
            names = self.lexicon.metrics_with_word(_stem(word))
            if len(names) < 2:
                return []
            choices += [f"'{word}' as {name}" for name in names]
        return choices

    def _read(
        self,
        choice: list[Item],
        time: TimeSpec,
        context: dict[str, Any] | None,
        events: frozenset[str],
    ) -> list[tuple[Draft, dict | None, str]]:
        """The readings of one choice of meanings: its draft, and the query as each model a
        dimension may come from, or None and why it does not compile."""
        draft = self._assemble(choice, context, events)
        query = self._finish(draft, time, context)
        if _compared_per_nothing(query):
            query = self._per_row(query)
        if _compared_per_nothing(query):
            # "flights with a delay over 60": a row's value, which the layer has no
            # dimension for; the total's average over 60 would answer something else
            compared = ", ".join(h["dimension"] for h in query["having"])
            draft.problems.append(
                f"{compared} compared with nothing to compare it per (a dimension, an "
                "entity, a day); the layer has no row-level column for it"
            )
        if draft.problems:
            return [(draft, None, "; ".join(draft.problems))]
        named = self._named_products(choice)
        return [
            (replace(draft, score=draft.score + bonus), *self._compiled(q))
            for q, bonus in self._join_readings(query, named)
        ]

    def _per_row(self, query: dict[str, Any]) -> dict[str, Any]:
        """ "how many flights had a departure delay over 60", nothing grouped: each metric
        compared aggregates a column of one model, and the one other metric counts that
        model's rows (its row count, or distinct values of its one-column key), so the
        comparison is of each row's column (a WHERE) and the count is of the rows that
        pass. Anything else is left as it is (compared per the total: refused)."""
        compared = [self.layer.metrics.get(h["dimension"]) for h in query["having"]]
        names = {h["dimension"] for h in query["having"]}
        counted = [m for m in query["metrics"] if m not in names]
        count = self.layer.metrics.get(counted[0]) if len(counted) == 1 else None
        if count is None or query.get("order_by") or not self._counts_rows(count):
            return query
        for metric in compared:
            if metric is None or metric.is_ratio or metric.agg not in {"sum", "avg", "min", "max"}:
                return query
            if not metric.column or metric.product != count.product:
                return query
        rows = [
            {"dimension": metric.column, "metric": metric.name, "op": h["op"], "value": h["value"]}
            for metric, h in zip(compared, query["having"], strict=True)
        ]
        per_row = {**query, "metrics": counted, "filters": [*query.get("filters", []), *rows]}
        return {k: v for k, v in per_row.items() if k != "having"}

    def _counts_rows(self, metric: Metric) -> bool:
        """Whether a metric counts its model's rows: a count of rows, or of the distinct
        values of a key that is the model's whole primary key (one row each)."""
        if metric.agg == "count" and not metric.column:
            return True
        contract = self.layer.contracts.get(metric.product)
        key = contract.primary_key if contract is not None else []
        return metric.agg == "count_distinct" and key == [metric.column]

    def _compiled(self, query: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """The query if it compiles, else None and why."""
        try:
            self.compiler.compile(SemanticQuery.from_dict(query))
        except (SemanticQueryError, ValueError) as exc:
            return None, str(exc)
        return query, ""

    def _join_readings(
        self, query: dict[str, Any], named: set[str]
    ) -> list[tuple[dict[str, Any], float]]:
        """The query once per model a dimension may come from, each with its score: a name
        held by two models equally near the metric's (a kitchen's grade, a courier's) is
        each of them, qualified, so that a tie asks back instead of failing or picking
        one; the model of an entity the question names wins ("kitchen grade")."""
        readings = [(query, 0.0)]
        filtered = [f["dimension"] for f in query.get("filters") or []]
        dims = [*(query.get("dimensions") or []), *filtered]
        for name in dict.fromkeys(dims):
            owners = self._owners(name, query.get("metrics") or [])
            if len(owners) > 1:
                readings = [
                    (_qualify(q, name, self._model_name(owner)), score + 2.0 * (owner in named))
                    for q, score in readings
                    for owner in owners
                ]
        return readings[:MAX_READINGS]

    def _named_products(self, items: list[Item]) -> set[str]:
        """The products of the entities and products the question names."""
        entities = {self.layer.entities[it.name].product for it in items if it.kind == "entity"}
        return {it.name for it in items if it.kind == "product"} | (entities - {None})

    def _owners(self, name: str, metrics: list[str]) -> list[str]:
        """The models equally near a metric's that hold a dimension of this name, when there
        are several; else none."""
        for metric in metrics:
            for part in ratio_parts(metric) or (metric,):
                product = self.layer.metrics[part].product if part in self.layer.metrics else None
                tied = self.layer.nearest_dimensions(name, product) if product else []
                if len(tied) > 1:
                    return [d.product for d in tied]
        return []

    def _model_name(self, product: str) -> str:
        """A product as a dimension's qualifier: its short name unless two domains share it."""
        short = product.split("/")[1]
        same = [p for p in self.layer.models if p.split("/")[1] == short]
        return short if len(same) == 1 else product

    def _typos(self, unknown: list[str]) -> tuple[dict[str, str], list[str]]:
        """Unknown words as the one known word each is a typo of; the choices when one is
        close to several (then nothing is corrected)."""
        corrections, ambiguous = {}, []
        for word in unknown:
            base = stem(word)
            close = self.lexicon.close(base)
            suffix = word[len(base) :] if word.startswith(base) else ""
            if len(close) == 1:
                corrections[word] = close[0] + suffix
            elif close:
                ambiguous += [f"'{word}' as '{c}{suffix}'" for c in close]
        return corrections, ambiguous

    def _choices(self, items: list[Item]) -> list[list[Item]]:
        """Every reading of the phrases with several meanings (capped)."""
        pools = []
        for item in items:
            same = [m for m in item.options if m.kind == item.kind]
            if item.kind in {"value", "dimension", "metric"} and len(same) > 1:
                pools.append([replace(item, name=m.name, value=m.value) for m in same])
            elif item.kind == "entity":  # "manufacturer": another domain's entity, or a
                # dimension of the product asked about; the reading that compiles decides
                key = self.layer.entities[item.name].key  # its key column is itself
                named = [
                    m
                    for m in item.options
                    if m.kind == "dimension" and self.dims[m.name].column != key
                ]
                pools.append([item, *(replace(item, kind=m.kind, name=m.name) for m in named)])
            else:
                pools.append([item])
        readings = itertools.islice(itertools.product(*pools), MAX_READINGS)
        return [[replace(it) for it in reading] for reading in readings]

    def _decide(self, readings: list[tuple[Draft, dict | None, str]]) -> ParsedQuestion:
        good = [(d, q) for d, q, _ in readings if q is not None]
        if not good:
            reasons = list(dict.fromkeys(r for _, _, r in readings if r))
            return _unanswerable("; ".join(reasons[:2]))
        best = max(d.score for d, _ in good)
        top = [(d, q) for d, q in good if d.score == best]
        distinct = {repr(sorted(q.items())): (d, q) for d, q in top}
        if len(distinct) > 1:
            choices = [self.interpret(q) for _, q in distinct.values()]
            return _clarify(choices, "the question can be read in more than one way")
        draft, query = top[0]
        interpretation = self.interpret(query) + (", counted" * draft.count)
        return ParsedQuestion(
            query,
            share=draft.share,
            listing=draft.listing,
            count=draft.count,
            averaged=draft.averaged,
            interpretation=interpretation,
        )

    # -- assembly -----------------------------------------------------------------------------
    def _assemble(
        self, items: list[Item], context: dict[str, Any] | None, events: frozenset[str]
    ) -> Draft:
        draft = Draft(events=events)
        self._grouping(items, draft)
        self._comparisons(items, draft)
        self._superlatives(items, draft)
        self._metrics(items, draft, context)
        self._populations(items, draft)
        self._subjects(items, draft)
        self._values(items, draft)
        self._rest(items, draft)
        self._per_period_average(items, draft)
        for i, item in enumerate(items):  # "how many different towns ... pizzas sold"
            asked = i and items[i - 1].kind == "g" and items[i - 1].name == "many"
            if asked and item.distinct and item.kind == "dimension" and item.name in draft.dims:
                draft.problems.append(f"'{item.words}' is to be counted, not grouped by")
        return draft

    def _grouping(self, items: list[Item], draft: Draft) -> None:
        """Dimensions after "by", "per", "for each", joined by "and"; "X per Y" ratios."""
        i = 0
        while i < len(items):
            item = items[i]
            if not (item.kind == "g" and item.name in {"by", "per", "each"}):
                i += 1
                continue
            item.used = True
            j, open_ = i + 1, True
            while j < len(items):
                nxt = items[j]
                if nxt.kind == "g" and nxt.name in {"by", "and", "each"}:
                    nxt.used, open_ = True, True
                    j += 1
                    continue
                if not open_:
                    break
                open_ = False
                if nxt.kind == "grain":
                    draft.grain, nxt.used = nxt.name, True
                elif nxt.kind == "dimension":
                    _add(draft.dims, nxt.name)
                    nxt.used = True
                elif nxt.kind == "entity" and not (
                    item.name == "per" and self._per_ratio(items, i)
                ):
                    label = self._label(nxt.name)
                    if _next_is(items, j, "dimension"):
                        nxt.used, open_ = True, True  # "by customer country": a qualifier
                    elif label is None:
                        break
                    else:
                        _add(draft.dims, label)
                        nxt.used = True
                elif nxt.kind == "product" and len(self._own_dims(nxt.name)) == 1:
                    _add(draft.dims, self._own_dims(nxt.name)[0])  # "by customer segment"
                    nxt.used = True
                else:
                    break
                j += 1
            i = j

    def _per_ratio(self, items: list[Item], at: int) -> bool:
        """Whether "per Y" divides ("units per order", "average revenue per customer")
        rather than groups ("revenue per store")."""
        after = items[at + 1] if at + 1 < len(items) else None
        if after is None or after.kind != "entity":
            return False
        return self._label(after.name) is None or any(
            it.kind == "g" and it.name == "avg" for it in items[:at]
        )

    def _comparisons(self, items: list[Item], draft: Draft) -> None:
        """`<metric|measure> more than N`, `more than N <metric>`, `with a discount`."""
        for i, item in enumerate(items):
            nxt = items[i + 1] if i + 1 < len(items) else None
            if item.kind == "g" and item.name == "none" and nxt and nxt.kind == "metric":
                item.used = nxt.used = True  # "out of stock", "zero stock": the metric is 0
                self._compare(nxt, "=", 0, draft)
                continue
            if not (item.kind == "g" and (item.name in CMP or item.name == "between")):
                continue
            j = i + 1
            while j < len(items) and items[j].kind == "g" and items[j].name in {"than", "eq"}:
                items[j].used = True
                j += 1
            if j >= len(items) or items[j].kind != "num":
                continue
            number, low = items[j], None
            if item.name == "between" and j + 2 < len(items) and items[j + 2].kind == "num":
                low, number = number, items[j + 2]
                items[j + 1].used = items[j].used = True
            target = _target(items, i, j)
            if target is None:
                continue
            item.used = number.used = target.used = True
            bounds = (
                [(">=", low.value), ("<=", number.value)]
                if low
                else [(CMP[item.name], number.value)]
            )
            for op, value in bounds:
                self._compare(target, op, value, draft)

    def _compare(self, target: Item, op: str, value: Any, draft: Draft) -> None:
        if target.kind == "entity":  # "more than 400 orders": the entity's count
            count = self._count_metric(target.name, None, within=draft.events)
            if count is None:
                draft.problems.append(f"nothing counts {target.words}")
                return
            target = replace(target, kind="metric", name=count)
        if target.kind == "metric":
            _add(draft.metrics, target.name)
            draft.having.append({"dimension": target.name, "op": op, "value": value})
        else:
            draft.filters.append({"dimension": target.name, "op": op, "value": value})

    def _superlatives(self, items: list[Item], draft: Draft) -> None:
        """ "top 3 stores by revenue", "which region has the most revenue", "the day with the
        highest revenue", "which product has the highest list price": a target to group by,
        a metric (or an attribute of the target) to rank by, a limit."""
        for i, item in enumerate(items):
            if not (item.kind == "g" and item.name in {"top", "bottom", "rank"}):
                continue
            item.used = True
            guess = _rank_target(items, i, skip=True)  # what is ranked, to count across
            dims = [self._dim_of(guess)] if guess is not None and self._dim_of(guess) else []
            counted = self._counted_after(items, i, dims, draft.events)
            after_by = _after_by(items, i)
            by = (
                None if counted or after_by is None else self._counted(after_by, dims, draft.events)
            )
            ranked = counted or _ranked_metric(items, i) or by
            if (counted or by) and any(it.kind == "metric" for it in items):
                # "the most products in stock": a count and a measure at once
                draft.problems.append(f"'{item.words}' ranks by a count and a measure at once")
                continue
            if by is not None and after_by is not None:  # counted after "by", not grouped
                _drop(draft.dims, self._dim_of(after_by) or "")
            if ranked is None and item.name != "rank" and self._rank_by_attribute(items, i, draft):
                continue
            target = _rank_target(items, i, skip=counted is not None)
            number = _adjacent_number(items, i) or (
                _adjacent_number(items, items.index(target)) if target else None
            )
            named = any(it.kind == "metric" for it in items)  # ranks by the metric named
            if target is None or (ranked is None and not named and item.name != "rank"):
                # Nothing measured ("the largest store"): ranking by a count the question
                # does not name would answer something else.
                if item.name != "rank":
                    draft.problems.append(f"nothing to rank by '{item.words}'")
                continue
            target.used = True
            if target.kind == "grain":
                draft.grain = target.name
            else:
                label = target.name if target.kind == "dimension" else self._label(target.name)
                if label is None:
                    draft.problems.append(f"{target.words} have no name to list them by")
                    continue
                if label not in draft.dims:
                    draft.dims.insert(0, label)
            if counted:
                items[i + 1].used = True
            if ranked is not None:
                ranked.used = True
                _add(draft.metrics, ranked.name)
            first = item.name
            if item.words in JUDGED and ranked is not None and self._less_is_better(ranked.name):
                first = "bottom" if first == "top" else "top"  # "the worst delay": the longest
            draft.order = [
                ("-" if first in {"top", "rank"} else "") + (ranked.name if ranked else "")
            ]
            if item.name != "rank":
                draft.limit = number.value if number else (5 if target.plural else 1)
                if number:
                    number.used = True

    def _less_is_better(self, name: str) -> bool:
        """Whether "the best" of a metric is its lowest: the layer's `better`, else a word
        of a bad quantity in its names ("delay"); a ratio's by its numerator."""
        metric = self.layer.metrics.get((ratio_parts(name) or [name])[0])
        if metric is None:
            return False
        if metric.better is not None:
            return metric.better == "lower"
        return bool(self.lexicon.metric_words.get(metric.name, set()) & WORSE_WHEN_MORE)

    def _counted(
        self, item: Item, dims: list[str], within: frozenset[str] = frozenset()
    ) -> Item | None:
        """An entity or a dimension as the metric counting it (across `dims`)."""
        if item.kind == "entity":
            count = self._count_metric(item.name, None, dims, within)
        elif item.kind == "dimension" and not self._numeric(item.name):
            count = f"distinct_{item.name}"
            count = count if count in self.layer.metrics else None
        else:
            count = None
        return replace(item, kind="metric", name=count) if count else None

    def _dim_of(self, item: Item) -> str | None:
        if item.kind == "dimension":
            return item.name
        return self._label(item.name) if item.kind == "entity" else None

    def _rank_by_attribute(self, items: list[Item], at: int, draft: Draft) -> bool:
        """ "which product has the highest unit cost": no metric, but a numeric attribute of
        the entity asked about right after the superlative (or after "by"): list the entity
        with that attribute, ordered by it."""
        attribute = _ranked_attribute(items, at, self._numeric)
        entity = next(
            (it for it in items if it.kind == "entity" and not it.used and it is not attribute),
            None,
        )
        if attribute is None or entity is None:
            return False
        own = self.layer.entities[entity.name].product  # an attribute of the entity itself
        label = self._label(entity.name)
        count = self._count_metric(entity.name, None)
        if label is None or count is None or self.dims[attribute.name].product != own:
            return False
        attribute.used = entity.used = True
        _drop(draft.dims, label)  # the entity first, then its attribute ("by unit cost")
        _drop(draft.dims, attribute.name)
        draft.dims[:0] = [label, attribute.name]
        _add(draft.metrics, count)
        draft.listing = True
        draft.order = [("-" if items[at].name == "top" else "") + attribute.name]
        number = _adjacent_number(items, at) or _adjacent_number(items, items.index(entity))
        if number:
            number.used = True
        draft.limit = number.value if number else (5 if entity.plural else 1)
        return True

    def _counted_after(
        self, items: list[Item], at: int, dims: list[str], within: frozenset[str]
    ) -> Item | None:
        """ "the most orders", "the fewest customers", "the most brands": the entity or
        dimension after a quantity superlative is counted, not ranked."""
        if items[at].words not in {"most", "fewest", "least"} or at + 1 >= len(items):
            return None
        return self._counted(items[at + 1], dims, within)

    def _metrics(self, items: list[Item], draft: Draft, context: dict[str, Any] | None) -> None:
        """Metrics named; "X per Y" as a ratio; "how many <entity>" as its count."""
        for i, item in enumerate(items):
            if item.kind != "metric":
                continue
            item.used = True
            nxt = items[i + 2] if i + 2 < len(items) else None
            per = i + 1 < len(items) and items[i + 1].kind == "g" and items[i + 1].name == "per"
            if per and nxt is not None and nxt.kind == "metric":
                nxt.used = items[i + 1].used = True
                _swap(draft.metrics, item.name, f"{item.name}/{nxt.name}")
                _drop(draft.metrics, nxt.name)
                continue
            if per and nxt is not None and nxt.kind == "entity" and self._per_ratio(items, i + 1):
                count = self._count_metric(nxt.name, self.layer.metrics[item.name].product)
                if count:
                    nxt.used = items[i + 1].used = True
                    _swap(draft.metrics, item.name, f"{item.name}/{count}")
                    continue
            if self._averaged_total(items, i, draft) or self._population(items, i):
                continue
            if self._counted_by_another(items, i):
                continue
            if not any(m.startswith(f"{item.name}/") for m in draft.metrics):
                _add(draft.metrics, item.name)
        for m in list(draft.metrics):
            if "/" not in m and any(r.endswith(f"/{m}") for r in draft.metrics):
                _drop(draft.metrics, m)
        if not draft.metrics:
            self._implied_metric(items, draft, context)
        if draft.order and draft.order[0] in {"", "-"}:
            first = draft.metrics[0] if draft.metrics else ""
            draft.order = [draft.order[0] + first] if first else []

    def _averaged_total(self, items: list[Item], at: int, draft: Draft) -> bool:
        """ "average seats of the planes": a total averaged over an entity named after it
        is the total per one of them; with none named, what to average over is unsaid
        (per row, day, store?) and answering the total would drop "average"."""
        before = items[at - 1] if at else None
        metric = self.layer.metrics.get(items[at].name)
        if not (before and before.kind == "g" and before.name == "avg" and not before.used):
            return False
        if any(it.kind == "grain" for it in items):  # "average revenue per day": its days'
            return False
        if metric is None or metric.agg not in {"sum", "count"}:
            return False
        before.used = True
        over = next((it for it in items[at + 1 :] if it.kind in {"entity", "metric"}), None)
        count = None
        if over is not None and over.kind == "entity" and not over.used:
            count = self._count_metric(over.name, metric.product)
        elif over is not None and self._population(items, items.index(over)):
            count = over.name  # "of the flights": the rows the total is over
        if count is not None and count != metric.name:
            over.used = True
            _add(draft.metrics, f"{metric.name}/{count}")
        else:
            draft.problems.append(
                f"'average {items[at].words}': {metric.name} is a total; say per what it is "
                "averaged (per <entity>)"
            )
        return True

    def _per_period_average(self, items: list[Item], draft: Draft) -> None:
        """ "average daily revenue", "orders per day on average": totals per period of the
        grain named, averaged over those periods, not the totals by period."""
        avg = next(
            (it for it in items if it.kind == "g" and it.name == "avg" and not it.used), None
        )
        if avg is None or draft.grain is None or not draft.metrics:
            return
        for name in draft.metrics:
            metric = self.layer.metrics.get(name)
            if metric is None or metric.agg not in {"sum", "count", "count_distinct"}:
                return
        avg.used = draft.averaged = True

    def _population(self, items: list[Item], at: int) -> bool:
        """ "the average delay of flights from JFK": a row count named after another metric
        of its model, with no "and" between, is whom that metric is about, not a second
        metric ("flights and average delay" asks for both)."""
        metric = self.layer.metrics.get(items[at].name)
        if metric is None or metric.agg != "count" or metric.column:
            return False
        for item in reversed(items[:at]):
            if item.kind == "g" and item.name in {"and", "vs", "per"}:
                return False
            other = self.layer.metrics.get(item.name) if item.kind == "metric" else None
            if other is not None:
                return other.product == metric.product and other.name != metric.name
        return False

    def _counted_by_another(self, items: list[Item], at: int) -> bool:
        """ "how many queens were sent home": a row count asked for with "how many", whose
        word another metric of the question is named with ("eliminated queens"), is what
        that metric counts, not a second metric."""
        metric = self.layer.metrics.get(items[at].name)
        asked = [it.name for it in items[max(at - 2, 0) : at] if it.kind == "g"]
        if metric is None or asked != ["how", "many"] or not self._counts_rows(metric):
            return False
        words = set(phrase_key(items[at].words))
        return any(
            other.kind == "metric"
            and other.name != metric.name
            and words <= self.lexicon.metric_words.get(other.name, set())
            for other in items[at + 1 :]
        )

    def _populations(self, items: list[Item], draft: Draft) -> None:
        """ "the average age of the queens": a dimension the metric's model cannot reach,
        named by a word of the name of that model's row count ("number of queens"), is
        the rows the metric is over, not something to group or list by."""
        if not draft.metrics or any(m not in self.layer.metrics for m in draft.metrics):
            return
        products = {self.layer.metrics[m].product for m in draft.metrics}
        if len(products) != 1:
            return
        (product,) = products
        counted = {
            word
            for key, meanings in self.lexicon.phrases.items()
            for m in meanings
            if m.kind == "metric"
            and self._counts_rows(self.layer.metrics[m.name])
            and self.layer.metrics[m.name].product == product
            for word in key
        }
        for item in items:
            if item.kind != "dimension" or item.used or self._reachable(item.name, product):
                continue
            if set(phrase_key(item.words)) <= counted:
                item.used = True

    def _implied_metric(
        self, items: list[Item], draft: Draft, context: dict[str, Any] | None
    ) -> None:
        """No metric named: count the entity ("how many stores"), the distinct values of a
        dimension ("how many brands"), list the entity ("which stores ..."), or reuse the
        conversation's metrics in a follow-up."""
        counted = next(
            (it for it in items if it.kind in {"entity", "dimension"} and not it.used), None
        )
        listing = any(it.kind == "g" and it.name in {"which", "list"} for it in items)
        asks_count = any(it.kind == "g" and it.name == "many" for it in items)
        if counted is None:
            if context and context.get("metrics"):
                draft.metrics = list(context["metrics"])
            else:
                draft.problems.append("no metric of the semantic layer matches")
            return
        counted.used = True
        if counted.kind == "dimension":
            name = f"distinct_{counted.name}"
            if name not in self.layer.metrics:
                draft.problems.append(f"{counted.words} cannot be counted")
                return
            draft.metrics = [name]
            return
        others = [it.name for it in items if it.kind == "value"]
        draft.metrics = [self._count_metric(counted.name, None, others, draft.events) or ""]
        if listing and not asks_count:
            label = self._label(counted.name)
            if label:
                draft.listing = True
                _add(draft.dims, label)
        if not draft.metrics[0]:
            draft.problems.append(f"nothing counts {counted.words}")

    def _subjects(self, items: list[Item], draft: Draft) -> None:
        """The entity or dimension a question is about, when it has a comparison on a metric
        ("stores with revenue below 10000", "days with revenue above 4000")."""
        if not draft.having:
            return
        asks_count = _says(items, "many") and not _says(items, "which", "list")
        for item in items:
            if item.used or item.kind not in {"entity", "dimension", "grain"}:
                continue
            item.used = True
            draft.count = asks_count  # "how many stores have ...": the stores that pass
            if item.kind == "grain":
                draft.grain = item.name
            elif item.kind == "dimension":
                _add(draft.dims, item.name)
            else:
                label = self._label(item.name)
                rows = None if label else self._rows_compared(item.name, draft.having)
                if label:
                    _add(draft.dims, label)
                elif rows:  # the entity is a row of the model compared: count those rows
                    draft.count = False
                    _add(draft.metrics, rows)
                elif asks_count:  # a count of one row would answer something else
                    draft.problems.append(f"{item.words} have no dimension to count them by")
            break

    def _rows_compared(self, entity_name: str, having: list[dict[str, Any]]) -> str | None:
        """The metric counting an entity in the one model whose columns the metrics compared
        aggregate, when the entity's rows are that model's (its product) and it counts
        them one each; else None."""
        compared = [self.layer.metrics.get(h["dimension"]) for h in having]
        products = {m.product for m in compared if m is not None}
        product = self.layer.entities[entity_name].product
        if None in compared or products != {product}:
            return None
        count = self._count_metric(entity_name, product)
        return count if count and self._counts_rows(self.layer.metrics[count]) else None

    def _values(self, items: list[Item], draft: Draft) -> None:
        """Dimension values as filters: one value `=`, several `in`, after "not" negated;
        a value of a dimension the question groups by in a share question is not a filter."""
        chosen: dict[str, list[Any]] = {}
        negated: set[str] = set()
        for i, item in enumerate(items):
            if item.kind != "value":
                continue
            item.used = True
            prev = items[i - 1] if i else None
            if prev and prev.kind == "g" and prev.name in {"not", "without", "other"}:
                prev.used = True
                negated.add(item.name)
            chosen.setdefault(item.name, []).append(item.value)
            nxt = items[i + 1] if i + 1 < len(items) else None
            if nxt and nxt.kind == "dimension" and nxt.name == item.name and not nxt.used:
                nxt.used = True  # "the North region"
            draft.score += self._context_score(items, item)
        for dim in _compared(items):  # "online versus store": each side, side by side
            _add(draft.dims, dim)
        shared = any(it.kind == "g" and it.name == "share" for it in items)
        for dim, values in chosen.items():
            if shared and dim in draft.dims:
                continue
            values = sorted(set(values), key=str)
            neg = dim in negated
            if len(values) == 1:
                draft.filters.append(
                    {"dimension": dim, "op": "!=" if neg else "=", "value": values[0]}
                )
            else:
                draft.filters.append(
                    {"dimension": dim, "op": "not in" if neg else "in", "value": values}
                )

    def _context_score(self, items: list[Item], value: Item) -> float:
        """A value's column is likelier when the question names its entity or product."""
        product = self.dims[value.name].product if value.name in self.dims else ""
        for it in items:
            if it.kind == "entity":
                entity = self.layer.entities[it.name]
                if entity.product == product:
                    return 2.0
            if it.kind == "product" and it.name == product:
                return 2.0
        return 0.0

    def _rest(self, items: list[Item], draft: Draft) -> None:
        """Numeric measures named without a comparison ("with a discount": > 0, "without":
        = 0), grains, shares, trends; anything unused is a problem."""
        for i, item in enumerate(items):
            if item.used:
                continue
            prev = items[i - 1] if i else None
            compared = {f["dimension"] for f in draft.filters}
            if item.kind == "dimension" and item.name in compared:
                continue
            if item.kind == "dimension" and self._numeric(item.name):
                # "with a discount" (> 0), "without a discount" (= 0); bare, it fits nothing.
                said = prev.name if prev is not None and prev.kind == "g" else ""
                if said not in {"with", "without"}:
                    draft.problems.append(f"'{item.words}' does not fit the question")
                    continue
                op = "=" if said == "without" else ">"
                draft.filters.append({"dimension": item.name, "op": op, "value": 0})
            elif item.kind == "dimension":
                _add(draft.dims, item.name)
            elif item.kind == "grain":
                draft.grain = item.name
            elif item.kind == "g" and item.name == "share":
                draft.share = True
            elif item.kind == "g" and item.name == "trend":
                draft.grain = draft.grain or "month"
            elif item.kind == "entity":
                which = prev is not None and prev.kind == "g" and prev.name in {"which", "list"}
                if self._label(item.name) and (which or not draft.metrics):
                    _add(draft.dims, self._label(item.name))  # "which stores ..."
            elif item.kind == "num":
                draft.problems.append(f"the number {item.words} does not fit the question")
            elif item.kind in {"metric"}:
                draft.problems.append(f"'{item.words}' does not fit the question")

    def _finish(self, draft: Draft, time: TimeSpec, context: dict[str, Any] | None) -> dict:
        grain = draft.grain or time.grain
        dims, filters = list(draft.dims), list(draft.filters)
        start, end = self._range(draft, time)
        if context:
            dims = dims or list(context.get("dimensions") or [])
            grain = grain or context.get("time_grain")
            kept = {f["dimension"] for f in filters}
            filters += [f for f in context.get("filters") or [] if f["dimension"] not in kept]
            start = start or context.get("start")
            end = end or context.get("end")
        query = {
            "metrics": draft.metrics,
            "dimensions": dims,
            "filters": filters,
            "having": draft.having,
            "time_grain": grain,
            "start": start,
            "end": end,
            "order_by": draft.order,
            "limit": draft.limit,
        }
        return {k: v for k, v in query.items() if v}

    def _range(self, draft: Draft, time: TimeSpec) -> tuple[str | None, str | None]:
        if not time.relative:
            start, end = time.start, time.end
        else:
            start, end = time.resolve(self._anchor(draft.metrics))
        return (start.isoformat() if start else None, end.isoformat() if end else None)

    def _anchor(self, metrics: list[str]) -> date:
        """The latest day of data of the first metric's model ("last week" is the week
        before the one holding the latest data)."""
        for name in metrics:
            base = (ratio_parts(name) or (name,))[0]
            metric = self.layer.metrics.get(base)
            if metric and metric.product in self.anchors:
                return self.anchors[metric.product]
        return max(self.anchors.values(), default=date.today())

    # -- the layer ------------------------------------------------------------------------------
    def _own_dims(self, product: str) -> list[str]:
        return [d.name for d in self.dims.values() if d.product == product and not d.is_time]

    def _label(self, entity_name: str) -> str | None:
        """The dimension an entity is listed by: `<entity>_name`, another `*_name` of its
        product, or a dimension on its key."""
        entity: Entity = self.layer.entities[entity_name]
        dims: list[Dimension] = [d for d in self.dims.values() if not d.is_time]
        own = [d for d in dims if d.product == entity.product]
        for d in own:
            if d.name == f"{entity.name}_name":
                return d.name
        for d in own:
            if d.column.endswith("_name"):
                return d.name
        return next((d.name for d in dims if d.column == entity.key), None)

    def _count_metric(
        self,
        entity_name: str,
        product: str | None,
        dims: list[str] | None = None,
        within: frozenset[str] = frozenset(),
    ) -> str | None:
        """The metric counting an entity: on `product` when given, else on the entity's own
        product when every dimension asked for is reachable from it, else where they are;
        only in the models `within` when a verb points to them ("products sold" are counted
        where sales are, never in stock; none there is no count)."""
        entity = self.layer.entities[entity_name]
        # a row count of the entity's own product counts it too (one row per key there)
        counts = [
            m
            for m in self.layer.metrics.values()
            if (m.agg == "count_distinct" and m.column == entity.key)
            or (m.agg == "count" and m.product == entity.product)
        ]
        if product:
            return next((m.name for m in counts if m.product == product), None)
        if within:
            counts = [m for m in counts if m.product in within]
        counts.sort(key=lambda m: (m.product != entity.product, m.name.startswith("distinct_")))
        for metric in counts:
            if all(self._reachable(d, metric.product) for d in dims or []):
                return metric.name
        return counts[0].name if counts else None

    def _reachable(self, dim: str, product: str) -> bool:
        # held by two models as near is reachable too: the readings then ask which
        return bool(self.layer.nearest_dimensions(dim, product))

    def _numeric(self, dim: str) -> bool:
        d = self.dims[dim]
        kind = self.layer.contracts[d.product].column(d.column).logical_type
        return kind in {"integer", "number"} and self.layer.entity_of_key(d.column) is None

    def interpret(self, query: dict[str, Any]) -> str:
        """The query in words: "revenue, by region, region = North, 2025-02-17..2025-02-23"."""
        parts = [", ".join(m.replace("/", " per ") for m in query.get("metrics") or [])]
        by = [f"per {query['time_grain']}"] if query.get("time_grain") else []
        if query.get("dimensions"):
            by.append(f"by {', '.join(query['dimensions'])}")
        parts += by
        for f in [*(query.get("filters") or []), *(query.get("having") or [])]:
            value = f["value"]
            value = ", ".join(map(str, value)) if isinstance(value, list) else value
            parts.append(f"{f['dimension']} {f['op']} {value}")
        if query.get("start") or query.get("end"):
            parts.append(f"{query.get('start') or '…'}..{query.get('end') or '…'}")
        if query.get("order_by"):
            first = query["order_by"][0]
            word = "top" if first.startswith("-") else "bottom"
            n = query.get("limit")
            parts.append(f"{word}{f' {n}' if n else ''} by {first.lstrip('-')}")
        return ", ".join(p for p in parts if p)


# -- helpers ---------------------------------------------------------------------------------
def _compared_per_nothing(query: dict[str, Any]) -> bool:
    """A metric compared after aggregation with nothing grouped: the total against it."""
    return bool(query.get("having")) and not (query.get("dimensions") or query.get("time_grain"))


def _stem(word: str) -> str:
    toks = tokens(word)
    return toks[0].stem if toks else word


def _is_unit(word: str) -> bool:
    return " " not in word and (_stem(word) in UNITS or _stem(word) in GRAINS)


def _meaning_item(span: Span) -> Item:
    """The span's meanings in the order roles need: entities before the counts named like
    them ("stores" is the store, counted when nothing else is asked), names before values."""
    meanings = span.meanings
    kinds = {m.kind for m in meanings}
    if "entity" in kinds:  # a dimension named alike stays a reading (see _choices)
        meanings = [m for m in meanings if m.kind in {"entity", "product"}] + [
            m for m in meanings if m.kind == "dimension"
        ]
    elif kinds & {"metric", "dimension"}:
        meanings = [m for m in meanings if m.kind != "value"] or meanings
    first = meanings[0]
    values = [m for m in meanings if m.kind == "value"]
    if first.kind == "value":
        return Item("value", span.words, first.name, first.value, span.plural, values)
    return Item(first.kind, span.words, first.name, None, span.plural, meanings)


def _value_reading(items: list[Item], at: int, values: list[Meaning]) -> list[Meaning]:
    """The value meanings the phrase at `at` is read by though it names something else: its
    dimension follows ("the store channel"), a negation precedes ("not store"), or a value
    of the same dimension stands across "and", "or", "versus" ("online versus store": else
    the second value would be dropped unsaid)."""
    nxt = items[at + 1] if at + 1 < len(items) else None
    prev = items[at - 1] if at else None
    if nxt is not None and nxt.kind == "dimension" and any(v.name == nxt.name for v in values):
        return [v for v in values if v.name == nxt.name]
    if prev and prev.kind == "g" and prev.name in {"not", "without"}:
        return values
    paired = {it.name for it in _joined(items, at) if it.kind == "value"}
    return [v for v in values if v.name in paired]


def _ignored_value(items: list[Item]) -> int | None:
    """Where an entity the assembly left unused is spelled like a value of a dimension
    the question filters on ("online, store": the channel store): dropped, that value
    would go unsaid, so it is read as the value too."""
    valued = {it.name for it in items if it.kind == "value"}
    for i, item in enumerate(items):
        if item.kind == "entity" and not item.used and any(v.name in valued for v in item.aside):
            return i
    return None


def _as_value(item: Item) -> Item:
    value = item.aside[0]
    return Item("value", item.words, value.name, value.value, item.plural, item.aside)


def _joined(items: list[Item], at: int) -> list[Item]:
    """The phrases joined to the one at `at` by "and", "or" or "versus"."""
    out = []
    for step in (-1, 1):
        link, other = at + step, at + 2 * step
        if 0 <= other < len(items) and items[link].kind == "g" and items[link].name in JOINS:
            out.append(items[other])
    return out


def _compared(items: list[Item]) -> list[str]:
    """Dimensions whose values the question sets against each other ("online versus store",
    "compare North and South"): two values or more of one dimension and a "versus"."""
    if not _says(items, "vs"):
        return []
    values: dict[str, set[Any]] = {}
    for item in items:
        if item.kind == "value":
            values.setdefault(item.name, set()).add(item.value)
    return [dim for dim, named in values.items() if len(named) > 1]


def _merge_scattered(items: list[Item], key: tuple[str, ...], meaning: Meaning) -> list[Item]:
    """Replace the words of a phrase found out of order by one item, where its first
    unknown word was."""
    out, placed = [], False
    for item in items:
        if item.kind == "unknown" and _stem(item.words) in key:
            if not placed:
                out.append(Item(meaning.kind, " ".join(key), meaning.name, options=[meaning]))
                placed = True
            continue
        out.append(item)
    return out


def _target(items: list[Item], cmp_at: int, num_at: int) -> Item | None:
    """A comparison's subject: a metric or numeric measure right after the number, else
    the nearest one before the comparison word."""
    after = items[num_at + 1] if num_at + 1 < len(items) else None
    if after is not None and after.kind in {"metric", "dimension", "entity"} and not after.used:
        return after
    for item in reversed(items[:cmp_at]):
        if item.kind in {"metric", "dimension"} and not item.used:
            return item
        if item.kind == "value":
            break
    return None


def _adjacent_number(items: list[Item], at: int) -> Item | None:
    for j in (at + 1, at - 1):
        if 0 <= j < len(items) and items[j].kind == "num" and not items[j].used:
            return items[j]
    return None


def _rank_target(items: list[Item], at: int, skip: bool = False) -> Item | None:
    """What a superlative ranks: the entity, dimension or grain right after it (past a
    number), else the nearest one before it."""
    j = at + 1 + skip
    while j < len(items) and (
        items[j].kind == "num" or (items[j].kind == "g" and items[j].name == "avg")
    ):
        j += 1
    if j < len(items) and items[j].kind in {"entity", "dimension", "grain"} and not items[j].used:
        return items[j]
    for item in reversed(items[:at]):
        if item.kind in {"entity", "dimension", "grain"} and not item.used:
            return item
    return None


def _ranked_metric(items: list[Item], at: int) -> Item | None:
    """The metric a superlative ranks by: the one right after it ("the most revenue"),
    else the one after "by"."""
    for j in range(at + 1, min(at + 3, len(items))):
        if items[j].kind == "metric":
            return items[j]
    for j in range(at + 1, len(items) - 1):
        if items[j].kind == "g" and items[j].name == "by" and items[j + 1].kind == "metric":
            return items[j + 1]
    return None


def _after_by(items: list[Item], at: int) -> Item | None:
    """What follows the first "by" after position `at` ("top 3 cities by number of orders")."""
    for j in range(at + 1, len(items) - 1):
        if items[j].kind == "g" and items[j].name == "by":
            return items[j + 1]
    return None


def _ranked_attribute(items: list[Item], at: int, numeric: Any) -> Item | None:
    """The numeric dimension a superlative ranks by when no metric is named: the one right
    after it ("the highest unit cost"), else the one after "by"."""
    for j in range(at + 1, min(at + 3, len(items))):
        if items[j].kind == "dimension" and numeric(items[j].name):
            return items[j]
    for j in range(at + 1, len(items) - 1):
        after = items[j + 1]
        if items[j].kind == "g" and items[j].name == "by" and after.kind == "dimension":
            return after if numeric(after.name) else None
    return None


def _says(items: list[Item], *names: str) -> bool:
    return any(it.kind == "g" and it.name in names for it in items)


def _next_is(items: list[Item], at: int, kind: str) -> bool:
    return at + 1 < len(items) and items[at + 1].kind == kind


def _add(names: list[str], name: str) -> None:
    if name not in names:
        names.append(name)


def _drop(names: list[str], name: str) -> None:
    if name in names:
        names.remove(name)


def _qualify(query: dict[str, Any], name: str, owner: str) -> dict[str, Any]:
    """The query with the dimension `name` read as the one of model `owner`."""
    qualified = f"{owner}.{name}"
    out = dict(query)
    if query.get("dimensions"):
        out["dimensions"] = [qualified if d == name else d for d in query["dimensions"]]
    if query.get("filters"):
        out["filters"] = [
            {**f, "dimension": qualified} if f["dimension"] == name else f for f in query["filters"]
        ]
    return out


def _swap(names: list[str], old: str, new: str) -> None:
    if old in names:
        names[names.index(old)] = new
    else:
        _add(names, new)
