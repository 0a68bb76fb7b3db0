"""Discovery: find products, columns and metrics by what they mean, with the reason why.

Each product, column and metric of the mesh becomes an index entry with fields of
decreasing weight: its names, its synonyms (from the ODCS contract, the semantic layer
and the business glossary, each remembered with its source), its description and its
context (the product a column belongs to). A query is scored by field-weighted BM25
over stemmed words (query words also widened by a general English thesaurus, Moby),
phrase matches of names and synonyms, the closeness in meaning of static word embeddings
shipped in a package (WordLlama's token table: "tills" is near "revenue" with no letter
in common; a token most entries hold weighs less), and the cosine of provider embeddings
(offline: hashed word and character n-grams, robust to typos; OpenAI when configured).
Everything is deterministic and local unless OpenAI is configured.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dagster_project.ai import AIProvider, OfflineProvider, get_provider, inputs_hash
from dagster_project.ai.text import (
    BM25F,
    THESAURUS,
    TIME_WORDS,
    lists_back,
    meaning_vectors,
    related_words,
    spelling_matches,
    terms,
    token_shares,
    words,
)
from dagster_project.checks.quality.companion_contracts import SUFFIX, discover_contracts
from dagster_project.core.contracts import Contract
from dagster_project.core.settings import MeshSettings, get_settings
from dagster_project.metadata.expansion import expand_entries
from dagster_project.metadata.semantics import SemanticLayer, load_semantic_layer

KINDS = ("product", "column", "metric")
FIELD_WEIGHTS = {
    "names": 3.0,
    "synonyms": 2.0,
    "description": 1.0,
    "context": 0.5,
    "expansion": 0.8,
}
PHRASE_BONUS = 0.35  # a whole multi-word name or synonym found in the query
NAME_BONUS = 0.5  # the query is exactly one of an entry's names: it asks for that entry
VECTOR_WEIGHT = 0.3
MEANING_WEIGHT = 2.0  # cosine of static token embeddings (meaning, not spelling)
EXPANSION_WEIGHT = 0.6  # a thesaurus word counts a little less than the word typed
KIND_BONUS = 0.3
FAMILY_WEIGHT = 0.2
# A product is what its columns and metrics hold: it scores at least CHILD_SHARE of its
# best child, and beats it (INTENT_LIFT) when the query asks for a table; a column beats
# the metric that aggregates it unless the query asks for an aggregate, when it is the
# other way round (a close call only: the other one scores CLOSE_CALL of it or more).
CHILD_SHARE = 0.8
INTENT_LIFT = 1.05
CLOSE_CALL = 0.75
# A column name many products hold (detected_at, period_start, narrative) says little
# about which one is meant: its entries weigh less, by how many products have it.
SHARED_NAME_WEIGHT = 0.15
PART_MIN = 4  # the shortest known word looked for inside an unknown one
SPELLING_CREDIT = 0.5  # a word matched only through a spelling correction
RELATED_WEIGHT = 0.6  # general English related words (Moby thesaurus), shared among them
RELATED_CREDIT = 0.4
RELATED_FIELDS = ("names", "synonyms")
# "revenue by region" asks for revenue, broken down by region: words after a grouping
# cue weigh less than the words naming what is wanted (they still count for coverage).
BREAKDOWN_CUES = ("by", "across")
BREAKDOWN_WEIGHT = 0.5
# Words that say which kind of thing the asker wants (stems; phrases as tuples).
KIND_CUES: dict[str, tuple[tuple[str, ...], ...]] = {
    "metric": (
        ("how", "many"),
        ("how", "much"),
        ("how", "big"),
        ("number", "of"),
        ("total",),
        ("average",),
        ("mean",),
        ("sum",),
        ("rate",),
        ("kpi",),
        ("metric",),
    ),
    "product": (
        ("list",),
        ("table",),
        ("dataset",),
        ("data",),
        ("record",),
        ("master",),
        ("row",),
        ("where", "do", "i", "find"),
        ("where", "can", "i", "find"),
        ("where", "is"),
        ("which", "table"),
    ),
    "column": (("column",), ("field",), ("flag",), ("attribute",)),
}


@dataclass(frozen=True)
class Entry:
    """One searchable thing of the mesh."""

    id: str  # product:<d/p>, column:<d/p>.<c>, metric:<name>
    kind: str
    title: str
    product: str | None
    column: str | None
    description: str
    names: tuple[str, ...]
    synonyms: tuple[tuple[str, str], ...] = ()  # (phrase, where it comes from)
    context: str = ""
    # For metrics: what they can be broken down by (dimension and entity names, synonyms).
    breakdowns: tuple[tuple[str, str], ...] = ()
    # Related phrases from the semantic layer (metadata/expansion.py), with their source.
    expansion: tuple[tuple[str, str], ...] = ()

    @property
    def text(self) -> str:
        synonyms = ", ".join(s for s, _ in self.synonyms)
        return f"{' '.join(self.names)}. {synonyms}. {self.description} {self.context}".strip()

    def to_row(self) -> dict[str, Any]:
        return {
            "entry_id": self.id,
            "kind": self.kind,
            "title": self.title,
            "product_key": self.product,
            "column_name": self.column,
            "description": self.description,
            "names": ", ".join(self.names),
            "synonyms": "; ".join(f"{s} ({src})" for s, src in self.synonyms),
            "context": self.context,
        }


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.entry.id,
            "kind": self.entry.kind,
            "title": self.entry.title,
            "score": round(self.score, 4),
            "reasons": list(self.reasons),
            "description": self.entry.description,
        }


# -- entries ----------------------------------------------------------------------------
def _odcs_synonyms(element: Any) -> list[str]:
    return [s.synonym for s in getattr(element, "synonyms", None) or [] if s.synonym]


def build_entries(
    contracts: Iterable[Contract],
    layer: SemanticLayer | None = None,
    values: Mapping[str, Sequence[str]] | None = None,
) -> list[Entry]:
    """Index entries for every product, column and metric. `values`: the known values of
    low-cardinality dimensions by dimension name (as ask reads them from the lake), found
    like a column's accepted values ("till" finds the channel column)."""
    layer = layer or SemanticLayer()
    glossary = _glossary_synonyms(layer)
    known = {
        (d.product, d.column): list(values[d.name])
        for d in layer.list_dimensions()
        if values and d.name in values
    }
    entries: list[Entry] = []
    for contract in sorted(contracts, key=lambda c: c.key):
        entries.append(_product_entry(contract, layer, glossary))
        entries.extend(
            _column_entry(contract, col, layer, glossary, known.get((contract.key, col.name)))
            for col in contract.columns
        )
    for metric in layer.list_metrics():
        synonyms = [(s, f"metric {metric.name}, semantic layer") for s in metric.synonyms]
        synonyms += glossary.get(f"metric:{metric.name}", [])
        parts = ", ".join(p.column or "rows" for p in layer.base_metrics(metric))
        context = [f"{_agg_words(metric.agg)} {parts} of {metric.product}"]
        for part in layer.base_metrics(metric):
            contract = layer.contracts.get(part.product)
            if part.column and contract and part.column in contract.column_names:
                context.append(contract.column(part.column).description)
            entity = layer.entity_of_key(part.column or "")
            if entity is not None and part.agg == "count_distinct" and not metric.is_ratio:
                # Counting an entity's keys counts the entity: "how many shoppers".
                source = f"counts entity {entity.name}, semantic layer"
                synonyms += [(s, source) for s in (entity.name, *entity.synonyms)]
        entries.append(
            Entry(
                id=f"metric:{metric.name}",
                kind="metric",
                title=f"{metric.title} (metric)",
                product=metric.product,
                column=metric.column,
                description=metric.description,
                names=(metric.name, metric.title),
                synonyms=tuple(synonyms),
                context=". ".join(context),
                breakdowns=tuple(_breakdowns(layer, metric.product)),
            )
        )
    return expand_entries(entries, layer)


def _breakdowns(layer: SemanticLayer, product: str) -> list[tuple[str, str]]:
    """(phrase, dimension) for every dimension and joinable entity of a metric's model."""
    found = []
    for dim in layer.list_dimensions(product):
        found += [(p, f"dimension {dim.name}") for p in (dim.name, *dim.synonyms)]
    for other in layer.reachable(product):
        for entity in layer.entities.values():
            if entity.product == other:
                found += [(p, f"entity {entity.name}") for p in (entity.name, *entity.synonyms)]
    return found


def _agg_words(agg: str | None) -> str:
    return {"count_distinct": "number of", "avg": "average", None: "ratio of"}.get(agg, agg or "")


def _glossary_synonyms(layer: SemanticLayer) -> dict[str, list[tuple[str, str]]]:
    """Node id → glossary phrases that point at it (the term and its synonyms)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for term in layer.glossary:
        for node in term.related:
            for phrase in (term.term, *term.synonyms):
                found.setdefault(node, []).append((phrase, f"glossary term '{term.term}'"))
    return found


def _product_entry(
    contract: Contract, layer: SemanticLayer, glossary: dict[str, list[tuple[str, str]]]
) -> Entry:
    obj = contract.odcs.schema_[0]
    synonyms = [(s, "contract") for s in contract.synonyms]
    for entity in layer.entities.values():
        if entity.product == contract.key:
            synonyms += [(entity.name, f"entity {entity.name}, semantic layer")]
            synonyms += [(s, f"entity {entity.name}, semantic layer") for s in entity.synonyms]
    synonyms += glossary.get(f"product:{contract.key}", [])
    return Entry(
        id=f"product:{contract.key}",
        kind="product",
        title=contract.key,
        product=contract.key,
        column=None,
        description=" ".join(filter(None, [contract.description, contract.usage])),
        names=tuple(filter(None, [contract.product, obj.businessName, contract.odcs.name])),
        synonyms=tuple(synonyms),
        context=f"{contract.domain} domain data product",
    )


def _column_entry(
    contract: Contract,
    col: Any,
    layer: SemanticLayer,
    glossary: dict[str, list[tuple[str, str]]],
    known: list[str] | None = None,
) -> Entry:
    synonyms = [(s, "contract") for s in _odcs_synonyms(col.prop)]
    model = layer.models.get(contract.key)
    for dim in model.dimensions if model else ():
        if dim.column == col.name:
            source = f"dimension {dim.name}, semantic layer"
            synonyms += [(dim.name, source)] if dim.name != col.name else []
            synonyms += [(s, source) for s in dim.synonyms]
    entity = layer.entity_of_key(col.name)
    if entity is not None and entity.product == contract.key:
        synonyms += [(f"{s} id", f"key of entity {entity.name}") for s in (entity.name,)]
    synonyms += glossary.get(f"column:{contract.key}.{col.name}", [])
    business = getattr(col.prop, "businessName", None)
    values = list(dict.fromkeys([*(col.accepted_values or []), *(known or [])]))
    return Entry(
        id=f"column:{contract.key}.{col.name}",
        kind="column",
        title=f"{contract.key}.{col.name}",
        product=contract.key,
        column=col.name,
        description=col.description,
        names=tuple(filter(None, [col.name, business])),
        synonyms=tuple(synonyms),
        context=" ".join(
            [f"column of {contract.product}"]
            + ([f"values: {', '.join(map(str, values))}"] if values else [])
        ),
    )


# -- the index --------------------------------------------------------------------------
@dataclass
class _Fields:
    bm25: BM25F | None = None
    phrases: list[list[tuple[tuple[str, ...], str, str]]] = field(default_factory=list)
    expansion: list[list[tuple[str, str]]] = field(default_factory=list)  # (term, source)


class SemanticIndex:
    """Ranked search over entries: lexical, synonyms, semantic layer and embeddings."""

    def __init__(
        self,
        entries: Sequence[Entry],
        *,
        provider: AIProvider | None = None,
        vectors: np.ndarray | None = None,
        vector_model: str | None = None,
        use_synonyms: bool = True,
        use_vectors: bool = True,
        use_expansion: bool = True,
    ):
        self.entries = list(entries)
        self.notes: list[str] = []
        self.provider = provider or OfflineProvider()
        self.use_synonyms = use_synonyms
        self.use_expansion = use_expansion
        self.fields = self._fields()
        self._options: dict[str, dict[str, tuple[float, float]]] = {}
        self.related = self._related()
        self.children, self.aggregated = self._family()
        self.commonness = self._commonness()
        self.breakdowns = [
            {t: source for phrase, source in e.breakdowns for t in terms(phrase)}
            for e in self.entries
        ]
        self._postings = self._posting_lists()
        self.vectors, self.vector_model, self.meanings = None, None, None
        if use_vectors and self.entries:
            texts = [e.text for e in self.entries]
            self.shares = token_shares(texts)
            self.meanings = meaning_vectors(texts, self.shares)
            if vectors is None:
                embedded = self.provider.embed([e.text for e in self.entries])
                vectors, vector_model = embedded.vectors, embedded.model
            self.vectors, self.vector_model = vectors, vector_model

    def _fields(self) -> _Fields:
        fields = _Fields()
        docs = []
        for entry in self.entries:
            synonyms = entry.synonyms if self.use_synonyms else ()
            expansion = entry.expansion if self.use_expansion else ()
            fields.expansion.append([(t, src) for p, src in expansion for t in terms(p)])
            docs.append(
                {
                    "names": [t for n in entry.names for t in terms(n)],
                    "synonyms": [t for s, _ in synonyms for t in terms(s)],
                    "description": terms(entry.description),
                    "context": terms(entry.context),
                    "expansion": [t for t, _ in fields.expansion[-1]],
                }
            )
            phrases = [(tuple(terms(n)), "name", n) for n in entry.names]
            phrases += [(tuple(terms(s)), src, s) for s, src in synonyms]
            fields.phrases.append([p for p in phrases if p[0]])
        fields.bm25 = BM25F(docs, FIELD_WEIGHTS)
        return fields

    def _related(self) -> list[list[int]]:
        """A column's product and a product's columns: their names count for coverage."""
        position = {e.id: i for i, e in enumerate(self.entries)}
        related: list[list[int]] = [[] for _ in self.entries]
        for i, entry in enumerate(self.entries):
            if entry.kind == "column" and f"product:{entry.product}" in position:
                parent = position[f"product:{entry.product}"]
                related[i].append(parent)
                related[parent].append(i)
        return related

    @property
    def model_label(self) -> str:
        return self.vector_model or "lexical only"

    def search(self, query: str, k: int = 10, kinds: Iterable[str] | None = None) -> list[Hit]:
        """The `k` best entries for a query (optionally of some kinds), best first."""
        query_terms = _what_terms(query)
        if not query_terms or not self.entries:
            return []
        weights = self._expand(query_terms)
        for term in _breakdown_terms(query, query_terms):
            weights[term] *= BREAKDOWN_WEIGHT
        lexical = self.fields.bm25.scores(weights)
        top = lexical.max()
        lexical = lexical / top if top > 0 else lexical
        # A product is about what its columns hold, a column about its product.
        family = np.array([max((lexical[j] for j in r), default=0.0) for r in self.related])
        scores = (lexical + FAMILY_WEIGHT * family) * self._coverage(query_terms)
        phrase_hits = [self._phrases(i, query_terms) for i in range(len(self.entries))]
        multiword = [sum(1 for text, _ in p if len(terms(text)) > 1) for p in phrase_hits]
        scores = scores + PHRASE_BONUS * np.minimum(multiword, 2)
        named = [tuple(query_terms) in {tuple(terms(n)) for n in e.names} for e in self.entries]
        scores = scores + NAME_BONUS * np.array(named, dtype=float)
        wanted_kinds = _kind_cues(query)
        scores = scores + KIND_BONUS * np.array(
            [e.kind in wanted_kinds for e in self.entries], dtype=float
        )
        similarity = self._similarity(query)
        if similarity is not None:
            scores = scores + VECTOR_WEIGHT * np.clip(similarity, 0, None)
        closeness = np.zeros(len(self.entries))
        if self.meanings is not None:
            # Only closeness above the typical entry's counts: a word the embeddings do
            # not know is about equally close to everything.
            meaning = self.meanings @ meaning_vectors([query], self.shares)[0]
            closeness = np.clip(meaning - np.median(meaning), 0, None)
            scores = scores + MEANING_WEIGHT * closeness
        scores, lifted = self._fold(scores * self.commonness, wanted_kinds, named)
        allowed = set(kinds or KINDS)
        order = sorted(range(len(self.entries)), key=lambda i: (-scores[i], self.entries[i].id))
        hits = []
        for i in order:
            if scores[i] <= 0 or self.entries[i].kind not in allowed:
                continue
            sim = None if similarity is None else float(similarity[i])
            reasons = self._reasons(i, query_terms, phrase_hits[i], sim, closeness[i])
            if i in lifted:
                reasons += (f"holds {self.entries[lifted[i]].title}, which matches",)
            hits.append(Hit(self.entries[i], float(scores[i]), reasons))
            if len(hits) == k:
                break
        return hits

    def _family(self) -> tuple[list[list[int]], list[int | None]]:
        """Each product's columns and metrics; each metric's column (when in the index)."""
        position = {e.id: i for i, e in enumerate(self.entries)}
        children: list[list[int]] = [[] for _ in self.entries]
        aggregated: list[int | None] = [None] * len(self.entries)
        for i, entry in enumerate(self.entries):
            parent = position.get(f"product:{entry.product}")
            if entry.kind != "product" and parent is not None:
                children[parent].append(i)
            if entry.kind == "metric":
                aggregated[i] = position.get(f"column:{entry.product}.{entry.column}")
        return children, aggregated

    def _commonness(self) -> np.ndarray:
        """A multiplier per entry: 1 for a column name only one product has, less for a
        name many products share (a companion's copies of its parent's not counted)."""
        holders: dict[str, set[str]] = {}
        for e in self.entries:
            if e.kind == "column":
                holders.setdefault(e.column or "", set()).add(_family_key(e.product or ""))
        return np.array(
            [
                1.0 / (1.0 + SHARED_NAME_WEIGHT * np.log(len(holders[e.column or ""])))
                if e.kind == "column"
                else 1.0
                for e in self.entries
            ]
        )

    def _fold(
        self, scores: np.ndarray, wanted: set[str], named: list[bool]
    ) -> tuple[np.ndarray, dict[int, int]]:
        """Scores with each product folded over its children and each metric weighed
        against its column, by what the query asks for (a table, a value, an aggregate;
        an entry the query names exactly stays first); and the products a child lifted,
        with that child."""
        folded = scores.copy()
        for metric, column in enumerate(self.aggregated):
            if column is None or min(scores[metric], scores[column]) <= 0:
                continue
            up, down = (metric, column) if "metric" in wanted else (column, metric)
            if scores[up] >= CLOSE_CALL * scores[down] and not named[down]:
                folded[up] = max(scores[up], INTENT_LIFT * scores[down])
        lift = INTENT_LIFT if "product" in wanted else CHILD_SHARE
        lifted: dict[int, int] = {}
        for product, children in enumerate(self.children):
            best = max(children, key=lambda c: folded[c], default=None)
            if best is not None and lift * folded[best] > folded[product]:
                folded[product], lifted[product] = lift * folded[best], best
        return folded, lifted

    def _alternatives(self, term: str) -> dict[str, tuple[float, float]]:
        """Other words for a query word, each with its (query weight, coverage credit):
        thesaurus words; close spellings of a word the index does not know; and general
        English related words the index knows (Moby), weighed low as they are broad."""
        if term in self._options:
            return self._options[term]
        vocab = self.fields.bm25.idf
        found = {o: (EXPANSION_WEIGHT, 1.0) for o in THESAURUS.get(term, ())}
        if term not in vocab:
            for o in spelling_matches(term, vocab):
                found.setdefault(o, (EXPANSION_WEIGHT, SPELLING_CREDIT))
            for o in _parts(term, vocab):
                found.setdefault(o, (EXPANSION_WEIGHT, SPELLING_CREDIT))
        for o, weight in self._related_words(term).items():
            found.setdefault(o, (weight, weight * RELATED_CREDIT / RELATED_WEIGHT))
        found.pop(term, None)
        self._options[term] = found
        return found

    def _related_words(self, term: str) -> dict[str, float]:
        """Moby's words for `term` that the index holds; a word that lists `term` back
        counts fully, a one-way one half; many candidates share the weight."""
        vocab = self.fields.bm25.idf
        candidates: dict[str, float] = {}
        for phrase in related_words(term):
            stems = terms(phrase)
            if len(stems) != 1 or stems[0] not in vocab or stems[0] == term:
                continue
            mutual = lists_back(phrase, term)
            candidates[stems[0]] = max(candidates.get(stems[0], 0.0), 1.0 if mutual else 0.5)
        share = RELATED_WEIGHT / max(1.0, len(candidates) ** 0.5)
        return {o: share * w for o, w in candidates.items()}

    def _expand(self, query_terms: list[str]) -> dict[str, float]:
        weights = {t: 1.0 for t in query_terms}
        for term in query_terms:
            for other, (weight, _) in self._alternatives(term).items():
                weights[other] = max(weights.get(other, 0.0), weight)
        return weights

    def _coverage(self, query_terms: list[str]) -> np.ndarray:
        """The share of the query's words an entry matches (Lucene's coord): an entry that
        answers every word beats one that repeats a single word. The names of a column's
        product, and of a product's columns, count too: "shopper e-mail" is the email
        column of the shoppers' product."""
        unique = list(dict.fromkeys(query_terms))
        covered = np.zeros(len(self.entries))
        for term in unique:
            options = {term: 1.0, **{o: c for o, (_, c) in self._alternatives(term).items()}}
            credit = np.zeros(len(self.entries))
            for option, value in options.items():
                credit = np.maximum(credit, value * self._matching(option))
            covered += credit
        return covered / len(unique)

    def _matching(self, term: str) -> np.ndarray:
        """1.0 for each entry that holds `term`: in a field, among what it can be broken
        down by, or in the names and synonyms of a related entry."""
        found = np.zeros(len(self.entries))
        found[list(self._postings.get(term, ()))] = 1.0
        return found

    def _posting_lists(self) -> dict[str, set[int]]:
        postings: dict[str, set[int]] = {}
        bm25 = self.fields.bm25
        for i, fields in enumerate(bm25.tf):
            own = set().union(*fields.values()) | set(self.breakdowns[i])
            for j in self.related[i]:
                own |= {t for f in RELATED_FIELDS for t in bm25.tf[j][f]}
            for t in own:
                postings.setdefault(t, set()).add(i)
        return postings

    def _phrases(self, i: int, query_terms: list[str]) -> list[tuple[str, str]]:
        found = []
        for phrase, source, text in self.fields.phrases[i]:
            if _contains(query_terms, phrase) and (len(phrase) > 1 or source != "name"):
                found.append((text, source))
        return found

    def _similarity(self, query: str) -> np.ndarray | None:
        if self.vectors is None:
            return None
        embedded = self.provider.embed([query])
        if embedded.model != self.vector_model:
            # The provider fell back to another vector space: compare in that space.
            fallback = OfflineProvider()
            self.vectors = fallback.embed([e.text for e in self.entries]).vectors
            self.vector_model, self.provider = fallback.embedding_model, fallback
            embedded = fallback.embed([query])
        return self.vectors @ embedded.vectors[0]

    def _related_reasons(self, i: int, wanted: set[str]) -> list[str]:
        """Query words found only among the entry's related phrases, with their source."""
        own = self.fields.bm25.tf[i]
        sources: dict[str, str] = {}
        for t, source in self.fields.expansion[i]:
            if t in wanted and not any(t in own[f] for f in FIELD_WEIGHTS if f != "expansion"):
                sources.setdefault(t, source)
        return [f"related word {t} ({src})" for t, src in sorted(sources.items())]

    def _reasons(
        self,
        i: int,
        query_terms: list[str],
        phrases: list[tuple[str, str]],
        similarity: float | None,
        closeness: float = 0.0,
    ) -> tuple[str, ...]:
        entry = self.entries[i]
        wanted = set(query_terms)
        reasons = [f"synonym '{text}' ({source})" for text, source in phrases if source != "name"]
        for label, vocab in (
            ("name", [t for n in entry.names for t in terms(n)]),
            (
                "synonym words",
                [t for s, _ in entry.synonyms for t in terms(s)] if not reasons else [],
            ),
            ("description", terms(entry.description)),
            ("context", terms(entry.context)),
        ):
            matched = sorted(wanted & set(vocab))
            if matched:
                verb = "match" if label.endswith("s") else "matches"
                reasons.append(f"{label} {verb} {', '.join(matched)}")
        reasons += self._related_reasons(i, wanted) if self.use_expansion else []
        by = sorted({f"{t} ({src})" for t in wanted if (src := self.breakdowns[i].get(t))})
        if by:
            reasons.append(f"can be broken down by {', '.join(by)}")
        if closeness >= 0.1:
            reasons.append(f"close in meaning (static word embeddings, +{closeness:.2f})")
        if similarity is not None and similarity >= 0.2:
            reasons.append(f"similar wording ({self.model_label} cosine {similarity:.2f})")
        return tuple(reasons) or ("weak overall similarity",)


def _what_terms(query: str) -> list[str]:
    """The query's content words without time qualifiers (unless that is all there is)."""
    found = terms(query)
    content = [t for t in found if t not in TIME_WORDS]
    return content or found


def _breakdown_terms(query: str, query_terms: list[str]) -> set[str]:
    """The query's words after its first grouping cue, when words name what is wanted
    before it; none of those also named before it."""
    plain = words(query)
    cue = next((i for i, w in enumerate(plain) if w in BREAKDOWN_CUES), None)
    if cue is None:
        return set()
    wanted = set(terms(" ".join(plain[:cue])))
    if not wanted:
        return set()
    return set(terms(" ".join(plain[cue + 1 :]))) & set(query_terms) - wanted


def _parts(term: str, vocabulary: Iterable[str]) -> list[str]:
    """Known words a word the index does not know begins or ends with: "stockroom" holds
    stock and room, "telephone" phone."""
    return [
        w
        for w in vocabulary
        if len(w) >= PART_MIN and w != term and (term.startswith(w) or term.endswith(w))
    ]


def _family_key(product: str) -> str:
    """A product's key, its anomalies companion's too: the companion copies its columns."""
    return product.removesuffix(SUFFIX)


def _kind_cues(query: str) -> set[str]:
    plain = list(words(query))
    stems = list(terms(query, drop_stopwords=False))
    return {
        kind
        for kind, cues in KIND_CUES.items()
        if any(_contains(plain, cue) or _contains(stems, cue) for cue in cues)
    }


def _contains(words: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(words[i : i + n]) == phrase for i in range(len(words) - n + 1))


# -- the mesh's index ---------------------------------------------------------------------
def entries_hash(entries: Sequence[Entry]) -> str:
    return inputs_hash([e.text for e in entries], [e.id for e in entries])


def _cache_uri(settings: MeshSettings, model: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model)
    return settings.registry_uri("semantic_index", f"{safe}.npz")


def save_vectors(settings: MeshSettings, entries: Sequence[Entry], index: SemanticIndex) -> None:
    """Keep the entries' embeddings, so searches do not embed the whole mesh again."""
    if index.vectors is None or index.vector_model is None:
        return
    buffer = io.BytesIO()
    np.savez(buffer, vectors=index.vectors, digest=np.array(entries_hash(entries)))
    settings.files.write_bytes(_cache_uri(settings, index.vector_model), buffer.getvalue())


def load_vectors(settings: MeshSettings, entries: Sequence[Entry], model: str) -> np.ndarray | None:
    uri = _cache_uri(settings, model)
    if not settings.files.exists(uri):
        return None
    data = np.load(io.BytesIO(settings.files.read_bytes(uri)))
    return data["vectors"] if str(data["digest"]) == entries_hash(entries) else None


def mesh_index(
    provider: AIProvider | None = None,
    settings: MeshSettings | None = None,
    values: Mapping[str, Sequence[str]] | None = None,
) -> SemanticIndex:
    """The index of the workspace's contracts and semantic layer (cached embeddings
    reused), with the known values of dimensions if given (see `build_entries`)."""
    provider = provider or get_provider()
    settings = settings or get_settings()
    contracts = discover_contracts()
    layer = load_semantic_layer(contracts=contracts)
    entries = build_entries(contracts, layer, values)
    vectors = load_vectors(settings, entries, provider.embedding_model)
    index = SemanticIndex(
        entries,
        provider=provider,
        vectors=vectors,
        vector_model=provider.embedding_model if vectors is not None else None,
    )
    index.notes = layer.excluded_notes()  # what a broken semantics file leaves unfound
    if vectors is None and provider.name != "offline":
        save_vectors(settings, entries, index)
    return index


def search(query: str, k: int = 10, kinds: Iterable[str] | None = None) -> list[Hit]:
    """Ranked products, columns and metrics of the mesh for a query in plain words."""
    return mesh_index().search(query, k=k, kinds=kinds)
