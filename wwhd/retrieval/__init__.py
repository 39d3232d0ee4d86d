"""The retrieval policy: search, coverage decision, passages and moments. Nodes stay thin.

Retriever.retrieve(query, routed, hinted) -> Retrieval
    index.search (hybrid, RRF)  ->  coverage.gather/decide  ->  passages.kept
    ->  moments per hit  ->  order  ->  dedupe  ->  citations
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from ..knowledge.index import KnowledgeIndex, SearchResult
from ..providers.local_embed import LocalEmbedder
from . import coverage, passages
from .coverage import Evidence
from .moments import MomentFinder
from .settings import DEFAULT, RetrievalSettings

__all__ = ["Evidence", "Retrieval", "Retriever", "RetrievalSettings", "retriever_for"]


@dataclass
class Retrieval:
    passages: list[dict] = field(default_factory=list)
    evidence: Evidence | None = None
    covered: bool = False
    usage: list = field(default_factory=list)
    # The talks the answer draws on, best first: one passage per document in fused order (up to
    # max_passages). The answered namespaces come from these, not from the passage cut, so
    # several passages of one talk do not hide the other talks' namespaces.
    talks: list[dict] = field(default_factory=list)

    @property
    def citations(self) -> list[dict]:
        return [passages.to_citation(p) for p in self.passages]


class Retriever:
    def __init__(self, index: KnowledgeIndex, settings: RetrievalSettings = DEFAULT):
        self.index = index
        self.settings = settings
        embedder = index.embedder if isinstance(index.embedder, LocalEmbedder) else LocalEmbedder()
        self.moments = MomentFinder(embedder, settings)

    def search(self, query: str, namespaces: list[str] | None) -> tuple[SearchResult, Evidence]:
        result = self.index.search(query, namespaces, self.settings.search_limit)
        return result, coverage.gather(result, self.index, query)

    def retrieve(self, query: str, routed: list[str], hinted: bool = False) -> Retrieval:
        """Passages for `query`, or none when the material does not cover it.

        A client's namespace choice narrows the search; when that namespace has nothing on the
        question, the whole knowledge base competes. Keyword routing never filters."""
        result, evidence = self.search(query, routed if hinted else None)
        usage = list(result.usage)
        if hinted and not evidence.covered(self.settings):
            wide, wide_evidence = self.search(query, None)
            usage += wide.usage
            if wide_evidence.covered(self.settings):
                result, evidence = wide, wide_evidence
        covered = evidence.covered(self.settings)
        chosen, talks = self.select(result, query) if covered and result.hits else ([], [])
        return Retrieval(chosen, evidence, bool(chosen), usage, talks)

    def select(self, result: SearchResult, query: str) -> tuple[list[dict], list[dict]]:
        """(passages for the answer, one passage per talk in fused order)."""
        # The search already embedded the question when the index uses the moment model.
        same_model = self.moments.embedder is self.index.embedder
        if same_model and result.query_vector is not None:
            q = np.asarray(result.query_vector, dtype=np.float32)
        else:
            q = self.moments.query_vector(query)
        candidates = [
            passages.passage(hit, self.moments.find(hit.chunk_id, hit.payload, q))
            for hit in passages.kept(result, self.settings)
        ]
        talks = list(passages.best_said(candidates).values())[: self.settings.max_passages]
        return passages.dedupe(passages.order(candidates, self.settings), self.settings), talks

    @staticmethod
    def namespaces_for(chosen: list[dict], routed: list[str], hinted: bool) -> list[str]:
        """Retrieval confirms or corrects the router: the namespaces the answer draws on, best
        first, then a client's hint; keyword guesses without a passage behind them drop out.
        `chosen` is one passage per talk (Retrieval.talks)."""
        if not chosen:
            return routed
        drawn = [p["namespace"] for p in chosen if p["namespace"] != "general"]
        first = [routed[0]] if hinted and routed else []
        return list(dict.fromkeys(first + drawn))[:3] + ["general"]


_retrievers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def retriever_for(index: KnowledgeIndex) -> Retriever:
    """One Retriever per index (its moment cache lives as long as the index)."""
    retriever = _retrievers.get(index)
    if retriever is None:
        retriever = _retrievers[index] = Retriever(index)
    return retriever
