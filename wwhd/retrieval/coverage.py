"""Is the question covered by the material? A decision from signals this collection calibrates.

Two signals, both measured against the collection itself rather than a word list:
- `best_cosine`: the best dense similarity of the question to a chunk (semantic closeness);
- `unknown_share`: the IDF-weighted share of the question's terms that no chunk holds at all
  ("Berlin", "carburettor" in a collection that never says them). IDF comes from the collection,
  so a term every chunk holds weighs ~0 and a term no chunk holds weighs most.
The decision is `best_cosine − unknown_penalty × unknown_share ≥ min_covered_score`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..knowledge.sparse import query_terms, term_index
from .settings import RetrievalSettings


@dataclass(frozen=True)
class Evidence:
    best_cosine: float | None  # None when dense search is off
    best_sparse: float
    unknown_share: float
    agreement: bool  # the best dense hit is also among the best BM25 hits

    def score(self, settings: RetrievalSettings) -> float | None:
        if self.best_cosine is None:
            return None
        return self.best_cosine - settings.unknown_penalty * self.unknown_share

    def covered(self, settings: RetrievalSettings) -> bool:
        score = self.score(settings)
        if score is None:
            # BM25 only: a match exists and most of the question is known to the collection.
            return self.best_sparse > 0 and self.unknown_share < 0.5
        return score >= settings.min_covered_score


def idf(df: int, total: int) -> float:
    """BM25's IDF (as Qdrant's IDF modifier computes it)."""
    return math.log(1.0 + (total - df + 0.5) / (df + 0.5))


def unknown_share(terms: list[str], frequencies: dict[int, int], total: int) -> float:
    """IDF-weighted share of `terms` that no chunk of the collection holds."""
    if not terms or total <= 0:
        return 0.0
    weights = {t: idf(frequencies.get(term_index(t), 0), total) for t in terms}
    whole = sum(weights.values())
    missing = sum(w for t, w in weights.items() if frequencies.get(term_index(t), 0) == 0)
    return missing / whole if whole else 0.0


def gather(result, index, query: str, agreement_depth: int = 5) -> Evidence:
    """Evidence for `query` from a SearchResult and the index's term statistics."""
    terms = query_terms(query)
    frequencies, total = index.term_frequencies(sorted({term_index(t) for t in terms}))
    best_dense = max(result.dense, key=result.dense.get) if result.dense else None
    top_sparse = sorted(result.sparse, key=result.sparse.get, reverse=True)[:agreement_depth]
    return Evidence(
        best_cosine=round(result.dense[best_dense], 4) if best_dense else None,
        best_sparse=round(max(result.sparse.values(), default=0.0), 4),
        unknown_share=round(unknown_share(terms, frequencies, total), 4),
        agreement=best_dense in top_sparse if best_dense else False,
    )
