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
        "chunk_cosine": hit.dense_score or 0.0,  # 0 when dense is off or only BM25 found it
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


def said_score(p: dict, chunk_weight: float) -> float:
    """How well a passage says the answer: its best line's score plus `chunk_weight` × the
    chunk's own cosine (a line that answers inside a chunk about the question, over a line that
    matches by chance in a chunk about something else)."""
    return p["moment_score"] + chunk_weight * p.get("chunk_cosine", 0.0)


def best_said(passages: list[dict], chunk_weight: float = 0.0) -> dict:
    """document_id → its passage that says the answer best (the earliest on a tie)."""
    leads: dict = {}
    for p in passages:
        lead = leads.get(p["document_id"])
        if lead is None or said_score(p, chunk_weight) > said_score(lead, chunk_weight):
            leads[p["document_id"]] = p
    return leads


def lead_in_place(passages: list[dict], chunk_weight: float = 0.0) -> list[dict]:
    """Fused order, except that each document's best-said passage takes that document's first
    place; the passage it displaces follows it. The line score only reorders inside a document."""
    leads = best_said(passages, chunk_weight)
    out: list[dict] = []
    for p in passages:
        lead = leads.pop(p["document_id"], None)
        if lead is not None:
            out.append(lead)
        if p is not lead and not _has(out, p):
            out.append(p)
    return out


def _has(passages: list[dict], p: dict) -> bool:
    # By identity: two passages may be equal dicts only in tests, never the same object.
    return any(p is q for q in passages)


def order(passages: list[dict], settings: RetrievalSettings) -> list[dict]:
    """The best-said passage of each of the first `diverse_leads` documents (fused order), then
    everything else in fused order with each document's best-said passage in its first place.

    The fused rank finds the right chunk; within a talk, the chunk whose line says the answer
    best is a better citation than the chunk that merely ranks first (an overview names every
    topic). The head keeps the quoted sources diverse. Putting the lead of *every* document
    first (the former `leads_first`) let the weak line score push the best-ranked chunk out of
    the top 5 behind other talks' leads (dev recall@5 0.756 → 0.867 without that, eval/RESULTS.md).
    """
    weight = settings.lead_chunk_weight
    head = list(best_said(passages, weight).values())[: settings.diverse_leads]
    rest = [p for p in passages if not _has(head, p)]
    return head + lead_in_place(rest, weight)


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
