"""BM25 sparse vectors computed locally: no model download, stable across processes."""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from functools import lru_cache

import snowballstemmer

# Qdrant applies IDF (collection modifier); we send the BM25 term-frequency part.
K1 = 1.2
B = 0.75
AVG_DOC_TOKENS = 220  # typical token count of a ~1,500-char chunk after stop words

WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
# The same pattern for text that is all ASCII, where Unicode's \w is [A-Za-z0-9_] anyway: the same
# words, found ~25 % faster (most transcripts; ingestion reads every chunk's words once).
_ASCII_WORD_RE = re.compile(WORD_RE.pattern, re.ASCII)
STOP_WORDS = frozenset(
    """
a about above after again against all am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself
him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't
my myself no nor not of off on once only or other ought our ours ourselves out over own same shan't she she'd
she'll she's should shouldn't so some such than that that's the their theirs them themselves then there
there's these they they'd they'll they're they've this those through to too under until up very was wasn't we
we'd we'll we're we've were weren't what what's when when's where where's which while who who's whom why why's
with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves also just really get
got go going gonna thing things like know say said says well okay ok yeah right one us let tell
ain't isn't aren't wasn't weren't won't wouldn't don't doesn't didn't can't couldn't shouldn't mustn't
haven't hasn't hadn't i'd i'm i've you've we've they've
herman herman's
""".split()
)  # the teacher's name: the product is "What Would Herman Do?", so questions name him
# without saying anything about the topic

_stemmer = snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


def fold(text: str) -> str:
    """Lower case without accents, curly apostrophes made straight: "Café’s" → "cafe's"."""
    text = text.lower().replace("\u2019", "'")
    if text.isascii():  # most text: nothing to strip (the generator below is ~1 µs a character)
        return text
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch))


@lru_cache(maxsize=1024)
def content_words(text: str) -> tuple[str, ...]:
    """The folded words of `text` that are not stop words, cached: indexing reads each chunk's
    words twice (BM25 here, the dense embedder in providers.local_embed)."""
    folded = fold(text)
    words = (_ASCII_WORD_RE if folded.isascii() else WORD_RE).findall(folded)
    return tuple(w for w in words if w not in STOP_WORDS)


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, stemmed terms."""
    terms = []
    for word in content_words(text):
        # Stop words go before the apostrophe split: "won't" must not become the term "won".
        word = word.split("'")[0]
        if word in STOP_WORDS or len(word) < 2:
            continue
        terms.append(_stem(word))
    return terms


@lru_cache(maxsize=4096)
def term_set(text: str) -> frozenset[str]:
    """The distinct terms of `text`, cached: a turn checks the same few passages ~25 times
    (rerank, coverage, moments) and tokenizing 1,500 characters costs ~0.45 ms."""
    return frozenset(tokenize(text))


def term_index(term: str) -> int:
    # crc32, not hash(): Python's hash is salted per process and would scatter the index.
    return zlib.crc32(term.encode()) & 0x7FFFFFFF


def document_vector(text: str) -> tuple[list[int], list[float]]:
    terms = tokenize(text)
    counts = Counter(terms)
    length = max(len(terms), 1)
    norm = K1 * (1 - B + B * length / AVG_DOC_TOKENS)
    weights: dict[int, float] = {}
    for term, tf in counts.items():
        idx = term_index(term)
        weights[idx] = weights.get(idx, 0.0) + tf * (K1 + 1) / (tf + norm)
    indices = sorted(weights)
    return indices, [weights[i] for i in indices]


# -- queries ----------------------------------------------------------------------------------------
def query_terms(text: str) -> list[str]:
    """The distinct terms of a question, in order (a repeated word says nothing more)."""
    return list(dict.fromkeys(tokenize(text)))


def query_vector(text: str) -> tuple[list[int], list[float]]:
    """Each distinct term at weight 1: Qdrant's IDF modifier weighs them by this collection."""
    indices = sorted({term_index(term) for term in query_terms(text)})
    return indices, [1.0] * len(indices)
