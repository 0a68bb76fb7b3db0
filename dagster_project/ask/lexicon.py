"""The words a question may use, all taken from the semantic layer: metric, dimension,
entity and product names, labels and synonyms, and the values of low-cardinality text
dimensions seen in the data. English function words (by, top, more than, last week...)
are the only vocabulary written here; nothing names a domain's things.

`tokens()` turns text into stemmed word tokens; `Lexicon.spans()` covers a question's
tokens with the longest phrases it knows, each span with every meaning it may have."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

from dagster_project.metadata.semantics import SemanticLayer

# Words that carry no meaning for a semantic query (articles, auxiliaries, pronouns).
_FILLER = """a an the of is are was were be been being do does did what whats show me give tell
    please our we us i my you your there it its they them this that these those all any
    total overall amount whole entire altogether
    much so far as well also now right currently current moment today can could would
    will much value figure figures number numbers count level levels
    end up at on in into to from for within who whose where when what's s
    those them"""
# Light verbs (and verbs of having: "how many brands do we carry"), dropped like fillers;
# a metric named with one ("units sold") still says which model records the event, so a
# count under the verb is taken from that model.
_VERBS = """get got make made makes bring brings brought go goes going went gone generate generates
    generated come came use used using place placed pay paid record recorded see buy bought
    sell sold selling sells shop shopped spend spent live living based located hold holds
    held perform performing happen happened earn earned take took
    carry carries carried offer offers offered keep keeps kept own owns owned contain
    contains contained"""
VERBS = frozenset(_VERBS.split())
# "distinct products": the thing is counted, whatever metric is named like it.
DISTINCT = frozenset(["distinct", "different", "unique", "separate", "individual"])
FILLER = frozenset(_FILLER.split()) | VERBS | DISTINCT
# Function words with a grammatical role; kept as tokens for the assembler.
GRAMMAR = {
    "by": "by",
    "per": "per",
    "each": "each",
    "every": "each",
    "across": "by",
    "and": "and",
    "or": "and",
    "versus": "vs",
    "vs": "vs",
    "compare": "vs",
    "compared": "vs",
    "top": "top",
    "best": "top",
    "highest": "top",
    "largest": "top",
    "biggest": "top",
    "most": "top",
    "greatest": "top",
    "maximum": "top",
    "max": "top",
    "leading": "top",
    "bottom": "bottom",
    "worst": "bottom",
    "lowest": "bottom",
    "smallest": "bottom",
    "least": "bottom",
    "longest": "top",
    "shortest": "bottom",
    "cheapest": "bottom",
    "busiest": "top",
    "strongest": "top",
    "weakest": "bottom",
    "fewest": "bottom",
    "minimum": "bottom",
    "min": "bottom",
    "not": "not",
    "excluding": "not",
    "except": "not",
    "outside": "not",
    "without": "without",
    "no": "without",
    "non": "not",
    "other": "other",
    "than": "than",
    "more": "gt",
    "greater": "gt",
    "above": "gt",
    "over": "gt",
    "exceeding": "gt",
    "higher": "gt",
    "larger": "gt",
    "bigger": "gt",
    "less": "lt",
    "fewer": "lt",
    "below": "lt",
    "under": "lt",
    "lower": "lt",
    "smaller": "lt",
    "exactly": "eq",
    "equal": "eq",
    "between": "between",
    "average": "avg",
    "avg": "avg",
    "mean": "avg",
    "typical": "avg",
    "share": "share",
    "percentage": "share",
    "percent": "share",
    "proportion": "share",
    "mix": "share",
    "split": "by",
    "broken": "by",
    "down": "by",
    "breakdown": "by",
    "trend": "trend",
    "evolution": "trend",
    "develop": "trend",
    "developed": "trend",
    "time": "time",
    "among": "among",
    "rank": "rank",
    "ranked": "rank",
    "ranking": "rank",
    "sorted": "rank",
    "many": "many",
    "how": "how",
    "atleast": "gte",
    "atmost": "lte",
    "which": "which",
    "out": "none",
    "zero": "none",
    "with": "with",
    "having": "with",
    "had": "with",
    "has": "with",
    "have": "with",
    "list": "list",
    "name": "list",
    "names": "list",
}
# "Best" and "worst" rank the highest first, unless less of the metric is better: the
# layer says so (`better: lower`), or its name is one of these English words of a bad
# quantity ("the worst delays" are the longest).
JUDGED = frozenset({"best", "worst"})
_WORSE_WHEN_MORE = """delay delays cost costs expense expenses loss losses error errors defect
    defects complaint complaints cancellation cancellations refund refunds churn wait
    waiting damage failure failures incident incidents latency penalty penalties waste"""
GRAINS = {
    "day": "day",
    "daily": "day",
    "week": "week",
    "weekly": "week",
    "month": "month",
    "monthly": "month",
    "quarter": "quarter",
    "quarterly": "quarter",
    "year": "year",
    "yearly": "year",
    "annual": "year",
    "annually": "year",
}
NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000}
SUFFIXES = {"k": 1_000, "m": 1_000_000}  # "20k", "1.5m"
# English adjectives that mean "much/little of <noun>": used only when the layer knows
# the noun ("the most expensive items" ranks by what the layer calls a price).
ADJECTIVES = {
    "expensive": ("price", "high"),
    "pricey": ("price", "high"),
    "cheap": ("price", "low"),
    "old": ("age", "high"),
    "young": ("age", "low"),
    "tall": ("height", "high"),
    "heavy": ("weight", "high"),
}
_ADJECTIVE_FORMS: dict[str, tuple[str, str]] = {
    **{f"{w}est": (w, "most") for w in ("cheap", "old", "young", "tall")},
    **{f"{w}er": (w, "more") for w in ("cheap", "old", "young", "tall")},
    "heaviest": ("heavy", "most"),
    "heavier": ("heavy", "more"),
    "priciest": ("pricey", "most"),
    "pricier": ("pricey", "more"),
}
# English words never read as typos of the layer's words ("older" is not "order").
ENGLISH = frozenset([*ADJECTIVES, *_ADJECTIVE_FORMS, *FILLER])
# Units after a number that say nothing the number's target does not.
UNITS = {"unit", "item", "piece", "percent", "pound", "euro", "dollar", "gbp", "eur", "usd"}
UNITS |= {"second", "minute", "hour", "mile", "km", "kilometre", "kilometer", "metre", "meter"}
UNITS |= {"kg", "kilogram", "gram", "litre", "liter", "foot", "feet", "inch"}
IRREGULAR = {
    "avg": "average",  # "avg order value" is the metric named "average order value"
    "mean": "average",
    "sold": "sell",
    "selling": "sell",
    "sells": "sell",
    "bought": "buy",
    "paid": "pay",
    "men": "man",
    "women": "woman",
    "people": "person",
    "children": "child",
}
MAX_VALUE_WORDS = 5
COUNTED = {("number", "of"), ("count", "of")}  # "how many queens": "the number of queens"
_TOKEN = re.compile(r"\d{4}-\d{2}-\d{2}|\d+(?:[.,]\d+)*(?:%|[km]\b)?|[a-z0-9]+")
_SPELLED = "|".join([*NUMBER_WORDS, *SCALES])


def number(word: str) -> int | float | None:
    """A numeric token as a number: "2,000", "20k", "1.5m", "20%" (0.2); None otherwise."""
    m = re.fullmatch(r"(\d+(?:[.,]\d+)*)(%|[km])?", word)
    if m is None:
        return None
    value = float(m[1].replace(",", "")) * SUFFIXES.get(m[2] or "", 1)
    value = value / 100 if m[2] == "%" else value
    return int(value) if value.is_integer() else value


def spell_numbers(text: str) -> str:
    """Numbers written in words as digits: "two thousand" → 2000, "fifty five" → 55."""

    def digits(match: re.Match) -> str:
        total = current = 0
        for word in match[0].split():
            if word in SCALES:
                current = max(current, 1) * SCALES[word]
                if SCALES[word] >= 1_000:
                    total, current = total + current, 0
            else:
                current += NUMBER_WORDS[word]
        return str(total + current)

    return re.sub(rf"\b(?:{_SPELLED})(?:[ -](?:{_SPELLED}))*\b", digits, text)


def adjectives(text: str, known: set[str]) -> str:
    """ "the most expensive", "cheapest", "older than": as the noun they grade ("highest
    price", "age more than"), when the layer knows that noun; other words stay."""

    def graded(word: str, degree: str) -> str | None:
        noun, high = ADJECTIVES[word][0], ADJECTIVES[word][1] == "high"
        if noun not in known:
            return None
        if degree in {"most", "least"}:
            return f"{'highest' if high == (degree == 'most') else 'lowest'} {noun}"
        return f"{noun} {'more' if high == (degree == 'more') else 'less'}"

    def rewrite(match: re.Match) -> str:
        degree, word = match[1], match[2]
        if word in _ADJECTIVE_FORMS:
            word, degree = _ADJECTIVE_FORMS[word]
        return graded(word, degree or "") or match[0] if degree else match[0]

    forms = "|".join([*ADJECTIVES, *_ADJECTIVE_FORMS])
    return re.sub(rf"\b(?:(most|least|more|less) )?({forms})\b", rewrite, text)


MIN_TYPO = 5


def edit_distance(a: str, b: str, most: int) -> int:
    """Typo distance: a letter left out, doubled or two neighbours swapped cost 1, a letter
    replaced by another 2 (so "pride" is not "price", nor "older" "order"); most + 1 once
    it is certainly larger than `most`."""
    prev2, prev = [], list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + 2 * (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, prev2[j - 2] + 1)
            row.append(cost)
        if min(row) > most:
            return most + 1
        prev2, prev = prev, row
    return prev[-1]


def stem(word: str) -> str:
    """A plural or verb form to its base, only as far as matching needs."""
    if word in IRREGULAR:
        return IRREGULAR[word]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith(("sses", "ches", "shes", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass
class Token:
    text: str  # as written, lower case
    stem: str
    plural: bool = False


def tokens(text: str) -> list[Token]:
    out = []
    for raw in _TOKEN.findall(text.lower().replace("_", " ").replace("'s", "")):
        base = stem(raw)
        out.append(Token(raw, base, base != raw and raw.endswith("s")))
    return out


def _function(token: Token) -> bool:
    word = token.text
    return word in GRAMMAR or word in GRAINS or word in NUMBER_WORDS or word[:1].isdigit()


def phrase_key(text: str) -> tuple[str, ...]:
    """The stems a phrase is matched by (fillers dropped, as in questions)."""
    return tuple(t.stem for t in tokens(text) if t.text not in FILLER and t.stem not in FILLER)


@dataclass(frozen=True)
class Meaning:
    kind: str  # metric | dimension | entity | product | value
    name: str  # metric, dimension, entity or product name
    value: str | None = None  # for a value: the value as stored


@dataclass
class Span:
    start: int  # index into the question's content tokens
    end: int
    words: str
    meanings: list[Meaning] = field(default_factory=list)
    plural: bool = False
    key: tuple[str, ...] = ()  # the stems matched


def _sentence(text: str) -> bool:
    """Text with a sentence's punctuation; a label's abbreviations ("Inc.", "St.") are not."""
    return bool(re.search(r"[;:!?]|\.\s+[a-z]|\.\s*\S+\s*\.", text))


class Lexicon:
    """Phrase → meanings, from the layer and the values of its text dimensions."""

    def __init__(self, layer: SemanticLayer, values: dict[str, list[str]]):
        self.phrases: dict[tuple[str, ...], list[Meaning]] = {}
        # each meaning's phrases as written, fillers kept ("pizzas sold"), by key
        self.written: dict[tuple[str, ...], dict[Meaning, set[tuple[str, ...]]]] = {}
        for m in layer.metrics.values():
            if not m.name.startswith("distinct_"):
                self._add(Meaning("metric", m.name), m.name, m.label, *m.synonyms)
        for d in layer.list_dimensions():
            self._add(Meaning("dimension", d.name), d.name, *d.synonyms)
        for e in layer.entities.values():
            self._add(Meaning("entity", e.name), e.name, *e.synonyms)
        for product in layer.models:
            self._add(Meaning("product", product), product.split("/")[1])
        lasts: dict[tuple[str, ...], list[str]] = {}
        for product in layer.models:  # "lines" for order_lines, when nothing else is
            lasts.setdefault(phrase_key(product.split("/")[1])[-1:], []).append(product)
        for key, products in lasts.items():
            if len(products) == 1 and key and key not in self.phrases:
                self.phrases[key] = [Meaning("product", products[0])]
        self._product_synonyms(layer)
        for dim, found in values.items():
            for value in found:  # labels ("Air Lines Inc."), not sentences (never phrases)
                if len(value.split()) <= MAX_VALUE_WORDS and not _sentence(value):
                    self._add(Meaning("value", dim, value), value)
        self.longest = max((len(k) for k in self.phrases), default=1)
        self.metric_words: dict[str, set[str]] = {}  # every word a metric is named with
        for by_meaning in self.written.values():
            for meaning, phrases in by_meaning.items():
                if meaning.kind == "metric":
                    words = self.metric_words.setdefault(meaning.name, set())
                    words.update(w for phrase in phrases for w in phrase)
        self.heads = self._heads(layer)
        self.events = _verb_models(layer)
        self.words = self._known_words()
        self.event_verbs = {
            v: m for v, m in _event_verbs(layer).items() if (v,) not in self.phrases
        }

    def _product_synonyms(self, layer: SemanticLayer) -> None:
        """A contract's other names for its product ("catalogue") for the words nothing
        else in the layer explains: a synonym made of known words ("daily revenue") would
        swallow the question's reading of them ("daily" grain, "revenue" metric)."""
        known = self._known_words()
        for product in layer.models:
            contract = layer.contracts.get(product)
            for synonym in contract.synonyms if contract is not None else []:
                key = phrase_key(synonym)
                if key and key not in self.phrases and not set(key) <= known:
                    self._add(Meaning("product", product), synonym)

    def _known_words(self) -> set[str]:
        """Every word of a phrase so far, and the grammar's and grains' words."""
        return {w for key in self.phrases for w in key} | set(GRAMMAR) | set(GRAINS)

    def event_models(self, text: str) -> frozenset[str]:
        """The models of the metrics named with a light verb the text uses ("sold": where
        "units sold" is kept), none when no metric's name has it."""
        verbs = {t.stem for t in tokens(text) if t.text in VERBS}
        named = {t.text for t in tokens(text)} & self.event_verbs.keys()
        return frozenset(
            {model for verb in verbs for model in self.events.get(verb, ())}
            | {model for verb in named for model in self.event_verbs[verb]}
        )

    def close(self, word: str) -> list[str]:
        """Known words a typo may stand for: for a word of at least 5 letters, those at
        typo distance 1 (2 from 8 letters on), with the same first letter."""
        if len(word) < MIN_TYPO or not word.isalpha() or word in ENGLISH:
            return []
        most = 1 if len(word) < 8 else 2
        close = sorted(
            w
            for w in self.words
            if w[:1] == word[:1]
            and abs(len(w) - len(word)) <= most
            and edit_distance(word, w, most) <= most
        )
        by_meaning = {self._sense(w): w for w in reversed(close)}  # "month", "monthly": one
        return sorted(by_meaning.values())

    def _sense(self, word: str) -> str:
        meanings = self.phrases.get((word,))
        return repr(meanings) if meanings else GRAMMAR.get(word) or GRAINS.get(word) or word

    def _add(self, meaning: Meaning, *phrases: str) -> None:
        for phrase in phrases:
            key = phrase_key(phrase or "")
            if not key:
                continue
            if meaning not in self.phrases.setdefault(key, []):
                self.phrases[key].append(meaning)
            written = tuple(t.stem for t in tokens(phrase))
            self.written.setdefault(key, {}).setdefault(meaning, set()).add(written)

    def _heads(self, layer: SemanticLayer) -> dict[str, Meaning]:
        """First word of a metric's name, when it starts no other metric's name ("units")."""
        firsts: dict[str, list[str]] = {}
        for m in layer.metrics.values():
            if not m.name.startswith("distinct_"):
                firsts.setdefault(stem(m.name.split("_")[0]), []).append(m.name)
        return {
            w: Meaning("metric", names[0])
            for w, names in firsts.items()
            if len(names) == 1 and w not in FILLER and w not in GRAMMAR and (w,) not in self.phrases
        }

    def spans(self, words: list[Token], counts: Collection[int] = ()) -> list[Span]:
        """The cheapest cover of the content tokens by known phrases: a phrase costs 1, a
        function word or number 0.5, an unknown word 2 ("average basket size" is "average"
        + "basket size", not "average basket" + "size"). `counts`: the tokens a dropped
        "number of" comes before; a phrase spans one only if it is written with it
        ("average number of orders" is not "average order value")."""
        n = len(words)
        best: list[tuple[float, int, list[Span]]] = [(0.0, 0, [])] + [(float("inf"), 0, [])] * n
        for i in range(n):
            cost, count, path = best[i]
            if cost == float("inf"):
                continue
            for size in range(1, min(self.longest, n - i) + 1):
                key = tuple(t.stem for t in words[i : i + size])
                meanings = self.phrases.get(key)
                if meanings and any(k in counts for k in range(i + 1, i + size)):
                    meanings = self._written_counting(key, meanings)
                if meanings is None and size > 1:
                    continue
                text = " ".join(t.text for t in words[i : i + size])
                plural = words[i + size - 1].plural
                span = Span(i, i + size, text, list(meanings or []), plural, key)
                step = 1.0 if meanings else (0.5 if _function(words[i]) else 2.0)
                candidate = (cost + step, count + 1, [*path, span])
                if candidate[:2] < best[i + size][:2]:
                    best[i + size] = candidate
        return best[n][2]

    def _written_counting(
        self, key: tuple[str, ...], meanings: list[Meaning]
    ) -> list[Meaning] | None:
        written = self.written.get(key, {})
        kept = [m for m in meanings if any(COUNT_WORDS & set(w) for w in written.get(m, ()))]
        return kept or None

    def metrics_with_word(self, word: str) -> list[str]:
        """The metrics one of whose names or synonyms has `word` (a stem) in it."""
        found = {
            m.name
            for key, meanings in self.phrases.items()
            if word in key and len(key) > 1
            for m in meanings
            if m.kind == "metric"
        }
        return sorted(found)

    def widest(
        self, span: Span, around: list[Token], lead: int, counts: bool = False
    ) -> list[Meaning]:
        """The span's meanings whose written phrase covers the most of the question's words,
        the fillers `around` it counted (`lead` of them come before it): "pizzas were sold"
        is the metric called "pizzas sold", not the pizza; after "distinct" the thing itself
        is meant ("distinct pizzas"). A meaning none of whose phrases the question writes
        ("number of queens" for "top 3 queens") covers less than one it writes ("queen");
        after "how many" (`counts`) "the number of" is written. Equal cover keeps every
        meaning."""
        if len(span.meanings) < 2:
            return span.meanings
        stems = [t.stem for t in around]
        distinct = any(t.text in DISTINCT for t in around[:lead])
        written = self.written.get(span.key, {})

        def fitting(phrase: tuple[str, ...]) -> tuple[str, ...] | None:
            if _within(phrase, stems):
                return phrase
            counted = counts and phrase[:2] in COUNTED
            return phrase[2:] if counted and _within(phrase[2:], stems) else None

        def cover(meaning: Meaning) -> float:
            fits = [len(f) for p in written.get(meaning, ()) if (f := fitting(p)) is not None]
            unwritten = len(span.key) - 0.5
            return max(fits, default=unwritten) + (distinct and meaning.kind != "metric")

        best = max(map(cover, span.meanings))
        return [m for m in span.meanings if cover(m) == best]

    def scattered(self, stems: set[str], free: set[str]) -> list[tuple[tuple[str, ...], Meaning]]:
        """Multi-word metric or dimension phrases whose words all occur in the question
        out of order ("sold the most units"), using at least one unknown word."""
        found = []
        for key, meanings in sorted(self.phrases.items(), key=lambda kv: -len(kv[0])):
            if len(key) > 1 and set(key) <= stems and set(key) & free:
                usable = [m for m in meanings if m.kind in {"metric", "dimension"}]
                if usable:
                    found.append((key, usable[0]))
                    free -= set(key)
        return found


def _within(phrase: tuple[str, ...], stems: list[str]) -> bool:
    """Whether the phrase's words occur in `stems` in its order (other words between)."""
    rest = iter(stems)
    return all(word in rest for word in phrase)


PARTICLES = ("up", "in", "out", "off", "on")  # of a phrasal verb a column is named after
_EVENT_TIME = re.compile(r"(?:_?(?:date|day|time|timestamp)|_(?:ts|at|on))$")


def _event_verbs(layer: SemanticLayer) -> dict[str, set[str]]:
    """The past forms of the verb a model's time dimension is named after ("aired" for
    `airdate`, "shipped" for `ship_date`, "premiered" for `premiere`) or its product's
    rows are the events of ("appeared" for `appearances`, "flew" and "fly" for `flights`)
    → those models: the event the question dates ("episodes aired in 2010"). Never the
    bare word of a time dimension, which may be a noun the layer knows ("order"); a form
    the layer itself has as a phrase (`delivered_at`: the time dimension) is left to it."""
    found: dict[str, set[str]] = {}
    for product, model in layer.models.items():
        verb = _EVENT_TIME.sub("", model.time_dimension or "").replace("_", "")
        particle = next((p for p in PARTICLES if verb.endswith(p) and len(verb) > len(p) + 2), "")
        verb = verb.removesuffix(particle)  # `signup_date`: "signed" (up), `login_at`: "logged"
        forms = _past_forms(verb) if len(verb) >= 3 and verb.isalpha() else set()
        for form in forms | _row_verbs(stem(product.split("/")[1].split("_")[-1])):
            # "sold" keeps its own reading (see _verb_models), "list" its grammar
            if form not in VERBS and form not in GRAMMAR and form not in GRAINS:
                found.setdefault(form, set()).add(product)
    return found


def _past_forms(verb: str) -> set[str]:
    doubled = verb + verb[-1] + "ed"  # "shipped"
    return {verb + "d"} if verb.endswith("e") else {verb + "ed", doubled}


# Nouns of events whose verb English does not form by a suffix.
_EVENT_NOUNS = {"flight": "fly flew flown flies flying", "sale": "sell sold", "loss": "lose lost"}
_NOUN_SUFFIXES = ("ment", "ance", "ence", "ing", "ery")  # shipment, appearance, delivery


def _row_verbs(noun: str) -> set[str]:
    """The forms of the verb whose events a product's rows are, by the noun it is named
    with ("shipments": ship, shipped; "appearances": appeared); none for other nouns."""
    if noun in _EVENT_NOUNS:
        return set(_EVENT_NOUNS[noun].split())
    for suffix in _NOUN_SUFFIXES:
        base = noun.removesuffix(suffix) + ("er" if suffix == "ery" else "")
        if noun.endswith(suffix) and len(base) >= 3:
            return {base} | _past_forms(base)
    return set()


def _verb_models(layer: SemanticLayer) -> dict[str, set[str]]:
    """Light verbs (as stems) in metric names, labels and synonyms → those metrics' models."""
    found: dict[str, set[str]] = {}
    for metric in layer.metrics.values():
        for phrase in (metric.name, metric.label, *metric.synonyms):
            for token in tokens(phrase or ""):
                if token.text in VERBS:
                    found.setdefault(token.stem, set()).add(metric.product)
    return found


WORSE_WHEN_MORE = frozenset(stem(w) for w in _WORSE_WHEN_MORE.split())
COUNT_WORDS = frozenset({"number", "count"})  # "the number of": what follows is counted
