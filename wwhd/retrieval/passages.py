"""From ranked hits to the passages an answer quotes and cites: cut-off, moment, de-duplication."""

from __future__ import annotations

from ..knowledge.index import Hit, SearchResult
from ..links import citation_timestamp, deep_link
from .moments import Moment
from .settings import RetrievalSettings

CITATION_KEYS = (
    "title",
    "url",
    "youtube_url",
    "timestamp",
    "namespace",
    "document_id",
    "chunk_id",
    "score",
)


def kept(result: SearchResult, settings: RetrievalSettings) -> list[Hit]:
    """Hits close enough to the best one, in fused order: cosine within `dense_gap` of the best
    cosine, or BM25 at least `sparse_share` of the best BM25 — gaps relative to this question."""
    top_dense = max(result.dense.values(), default=None)
    top_sparse = max(result.sparse.values(), default=0.0)
    out = []
    for hit in result.hits:
        near_dense = (
            top_dense is not None
            and hit.dense_score is not None
            and hit.dense_score >= top_dense - settings.dense_gap
        )
        near_sparse = top_sparse > 0 and hit.sparse_score >= top_sparse * settings.sparse_share
        if near_dense or near_sparse:
            out.append(hit)
    return out


def passage(hit: Hit, moment: Moment) -> dict:
    p = hit.payload
    return {
        "chunk_id": hit.chunk_id,
        "document_id": p.get("document_id"),
        "title": p.get("title", ""),
        "text": p.get("text", ""),
        "namespace": p.get("namespace", ""),
        "start_s": p.get("start_s"),
        "end_s": p.get("end_s"),
        "moment_s": moment.second,
        "moment_offset": moment.offset,
        "moment_score": round(moment.score, 4),
        "page": p.get("page"),
        "chunk_index": p.get("chunk_index", 0),
        "youtube_url": p.get("youtube_url") or "",
        "source_url": p.get("source_url") or "",
        "url": deep_link({**p, "start_s": moment.second}),
        "timestamp": citation_timestamp(moment.second),
        "score": round(float(hit.score), 4),
    }


def is_duplicate(chosen: list[dict], candidate: dict, window_s: float) -> bool:
    """Same document and the same moment (within `window_s`), or the same untimed page/neighbour
    chunk: citing it twice would send the reader to one place twice."""
    for c in chosen:
        if c["document_id"] != candidate["document_id"]:
            continue
        a, b = c["moment_s"], candidate["moment_s"]
        if a is not None and b is not None and abs(a - b) < window_s:
            return True
        if (
            a is None
            and b is None
            and c["page"] == candidate["page"]
            and abs(c["chunk_index"] - candidate["chunk_index"]) <= 1
        ):
            return True
    return False


def leads_first(passages: list[dict]) -> list[dict]:
    """Each document's best-said moment first (documents in fused order), then the rest.

    The fused rank finds the right talk; within it, the chunk whose line says the answer best is
    a better citation than the chunk that merely ranks first (a talk's overview names every topic).
    """
    groups: dict = {}
    for p in passages:
        groups.setdefault(p["document_id"], []).append(p)
    leads = [max(group, key=lambda p: p["moment_score"]) for group in groups.values()]
    lead_ids = {id(p) for p in leads}
    return leads + [p for p in passages if id(p) not in lead_ids]


def dedupe(passages: list[dict], settings: RetrievalSettings) -> list[dict]:
    chosen: list[dict] = []
    for p in passages:
        if not is_duplicate(chosen, p, settings.same_source_window_s):
            chosen.append(p)
        if len(chosen) >= settings.max_passages:
            break
    return chosen


def to_citation(p: dict, position: int | None = None) -> dict:
    citation = {key: p[key] for key in CITATION_KEYS}
    if position is not None:
        citation["position"] = position
    return citation
