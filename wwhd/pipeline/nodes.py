"""The four nodes. Each takes (state, runtime) and returns only the keys it changes."""
from __future__ import annotations

import logging
import re
import time
from urllib.parse import parse_qs, urlparse

from langgraph.runtime import Runtime

from ..knowledge.index import Hit, IndexUnavailable
from ..knowledge.sparse import tokenize
from ..providers.base import AnswerRequest, Usage
from . import prompts, safety
from .context import PipelineContext
from .state import ChatState

log = logging.getLogger(__name__)

FOLLOW_UP_RE = re.compile(r"\b(it|that|this|those|these|them|he|his|him|there|more|else|again|also|instead|"
                          r"what about|how about|and|then|why|example|longer|how long|how often)\b", re.I)
SAME_SOURCE_WINDOW_S = 90  # two hits of one video closer than this are one citation


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


# -- route ------------------------------------------------------------------------------------------
def standalone_query(question: str, history: list[dict]) -> str:
    """Rewrite a follow-up into a stand-alone query by carrying the previous question's terms.

    A rule, not an LLM call: it keeps the common path at one LLM call per answer, and for hybrid
    search the earlier question's words are what a rewrite would add anyway.
    """
    previous = [turn["content"] for turn in history if turn["role"] == "user"]
    if not previous:
        return question
    terms = tokenize(question)
    if len(terms) <= 3 or (len(terms) <= 8 and FOLLOW_UP_RE.search(question)):
        return f"{previous[-1]} {question}"
    return question


def keyword_scores(query: str, registry) -> dict[str, int]:
    terms = set(tokenize(query))
    scores = {}
    for ns in registry:
        words = set(tokenize(" ".join(ns.keywords) + " " + ns.name.replace("_", " ")))
        hits = len(terms & words)
        if hits and ns.name != "general":
            scores[ns.name] = hits
    return scores


def route(state: ChatState, runtime: Runtime[PipelineContext]) -> dict:
    started = time.perf_counter()
    ctx = runtime.context
    question = state["question"]
    if safety.is_crisis(question):
        return {"crisis": True, "namespaces": [], "route_confidence": 1.0, "route_method": "safety",
                "query": question, "timings": {"route_ms": _ms(started)}}
    query = standalone_query(question, state.get("history") or [])
    known = {ns.name for ns in ctx.registry}
    scores = keyword_scores(query, ctx.registry)
    ranked = sorted(scores, key=lambda name: (-scores[name], name))
    top = scores[ranked[0]] if ranked else 0
    picked = [name for name in ranked if scores[name] >= max(1, top / 2)][:3]
    method, confidence, usage, calls = "keywords", min(1.0, 0.4 + 0.2 * top) if picked else 0.0, [], 0
    hint = state.get("namespace_hint")
    if hint in known and hint != "general":
        picked = [hint] + [name for name in picked if name != hint][:2]
        method, confidence = "hint", 1.0
    if not picked and ctx.llm_routing and not ctx.chat_model.offline:
        catalogue = [(ns.name, ns.description) for ns in ctx.registry]
        reply, llm_usage = ctx.chat_model.complete(prompts.router_messages(query, catalogue))
        picked = [name for name in re.findall(r"[a-z_]+", reply.lower()) if name in known and name != "general"][:3]
        usage, calls = [llm_usage.to_dict()], 1
        method, confidence = "llm", 0.6 if picked else 0.0
    if not picked:
        method = "retrieval"  # retrieve searches everything and the hits decide
    namespaces = picked + ["general"] if picked else []
    return {"query": query, "namespaces": namespaces, "route_confidence": round(confidence, 2),
            "route_method": method, "crisis": False, "usage": usage, "llm_calls": calls,
            "timings": {"route_ms": _ms(started)}}


# -- retrieve ---------------------------------------------------------------------------------------
def format_timestamp(seconds: float | None) -> str:
    if seconds is None:
        return ""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def youtube_id(url: str | None) -> str | None:
    if not url:
        return None
    parsed = urlparse(url)
    host = parsed.netloc.lower().removeprefix("www.").removeprefix("m.")
    if host == "youtu.be":
        return parsed.path.strip("/").split("/")[0] or None
    if host.endswith("youtube.com"):
        if parsed.path == "/watch":
            return (parse_qs(parsed.query).get("v") or [None])[0]
        match = re.match(r"^/(embed|shorts|live)/([\w-]+)", parsed.path)
        return match.group(2) if match else None
    return None


def deep_link(payload: dict) -> str:
    """A link to the exact second of the video, else the page of the source, else the source."""
    video = youtube_id(payload.get("youtube_url"))
    start = payload.get("start_s")
    if video:
        return f"https://www.youtube.com/watch?v={video}" + (f"&t={int(start)}s" if start is not None else "")
    url = payload.get("source_url") or payload.get("youtube_url") or ""
    if url and payload.get("page"):
        return f"{url}#page={payload['page']}"
    return url


def coverage(query_terms: set[str], text: str) -> float:
    if not query_terms:
        return 0.0
    return len(query_terms & set(tokenize(text))) / len(query_terms)


def select_passages(hits: list[Hit], query: str, ctx: PipelineContext) -> list[dict]:
    """Relative cut-off against the best hit, then one passage per source and time window."""
    if not hits:
        return []
    terms = set(tokenize(query))
    top_sparse = max(h.sparse_score for h in hits)
    dense_scores = [h.dense_score for h in hits if h.dense_score is not None]
    top_dense = max(dense_scores) if dense_scores else None
    chosen: list[dict] = []
    for hit in hits:
        keep = hit.sparse_score >= top_sparse * ctx.relative_cutoff if top_sparse > 0 else False
        if top_dense is not None and hit.dense_score is not None:
            keep = keep or hit.dense_score >= top_dense - 0.08
        # Always offer a second source when it shares the question's words (answers need two views).
        if not keep and len(chosen) < 2 and coverage(terms, hit.payload.get("text", "")) >= ctx.min_coverage:
            keep = True
        if not keep:
            continue
        p = hit.payload
        duplicate = any(
            c["document_id"] == p.get("document_id") and (
                (c["start_s"] is not None and p.get("start_s") is not None
                 and abs(c["start_s"] - p["start_s"]) < SAME_SOURCE_WINDOW_S)
                or (c["start_s"] is None and p.get("start_s") is None and c["page"] == p.get("page")
                    and abs(c["chunk_index"] - p.get("chunk_index", 0)) <= 1))
            for c in chosen)
        if duplicate:
            continue
        chosen.append({"chunk_id": hit.chunk_id, "document_id": p.get("document_id"), "title": p.get("title", ""),
                       "text": p.get("text", ""), "namespace": p.get("namespace", ""), "start_s": p.get("start_s"),
                       "end_s": p.get("end_s"), "page": p.get("page"), "chunk_index": p.get("chunk_index", 0),
                       "youtube_url": p.get("youtube_url") or "", "source_url": p.get("source_url") or "",
                       "url": deep_link(p), "timestamp": format_timestamp(p.get("start_s")),
                       "score": round(float(hit.score), 4)})
        if len(chosen) >= ctx.max_passages:
            break
    return chosen


def to_citation(passage: dict) -> dict:
    return {key: passage[key] for key in ("title", "url", "youtube_url", "timestamp", "namespace", "document_id",
                                          "chunk_id", "score")}


def retrieve(state: ChatState, runtime: Runtime[PipelineContext]) -> dict:
    started = time.perf_counter()
    ctx = runtime.context
    query = state["query"]
    terms = set(tokenize(query))
    usage: list[dict] = []
    try:
        hits, used = ctx.index.search(query, state.get("namespaces") or None, ctx.search_limit)
        usage += [u.to_dict() for u in used]
        best = max((coverage(terms, h.payload.get("text", "")) for h in hits[:3]), default=0.0)
        if state.get("namespaces") and best < ctx.min_coverage:
            # The router may have guessed wrong: let the whole knowledge base compete.
            wide, used = ctx.index.search(query, None, ctx.search_limit)
            usage += [u.to_dict() for u in used]
            wide_best = max((coverage(terms, h.payload.get("text", "")) for h in wide[:3]), default=0.0)
            if wide_best > best:
                hits, best = wide, wide_best
    except IndexUnavailable as exc:
        log.warning("retrieval unavailable", extra={"error": str(exc)[:200]})
        return {"passages": [], "citations": [], "kb_available": False, "covered": False, "usage": usage,
                "timings": {"retrieve_ms": _ms(started)}}
    dense_ok = any(h.dense_score is not None and h.dense_score >= 0.55 for h in hits[:3])
    covered = bool(hits) and (best >= ctx.min_coverage or dense_ok)
    passages = select_passages(hits, query, ctx) if covered else []
    namespaces = state.get("namespaces") or []
    if passages and (not namespaces or state.get("route_method") == "retrieval"):
        namespaces = list(dict.fromkeys([p["namespace"] for p in passages] + ["general"]))[:4]
    return {"passages": passages, "citations": [to_citation(p) for p in passages], "kb_available": True,
            "covered": bool(passages), "namespaces": namespaces, "usage": usage,
            "timings": {"retrieve_ms": _ms(started)}}


# -- answer -----------------------------------------------------------------------------------------
def answer(state: ChatState, runtime: Runtime[PipelineContext]) -> dict:
    started = time.perf_counter()
    ctx = runtime.context
    write = runtime.stream_writer
    if not state.get("kb_available", True) or not state.get("covered"):
        text = prompts.KB_UNAVAILABLE if not state.get("kb_available", True) else prompts.NOT_COVERED
        write({"token": text})
        return {"answer": text, "timings": {"answer_ms": _ms(started)}}
    request = AnswerRequest(question=state["question"], query=state["query"], passages=state["passages"],
                            messages=prompts.answer_messages(state["question"], state["passages"],
                                                             state.get("history") or []))
    parts: list[str] = []
    usage = Usage(model=ctx.chat_model.name)
    first_token_ms = None
    for piece in ctx.chat_model.stream_answer(request):
        ctx.check_cancelled()
        if isinstance(piece, Usage):
            usage = piece
            continue
        if first_token_ms is None:
            first_token_ms = _ms(started)
        parts.append(piece)
        write({"token": piece})
    return {"answer": "".join(parts), "usage": [usage.to_dict()], "llm_calls": 0 if ctx.chat_model.offline else 1,
            "timings": {"answer_ms": _ms(started), "first_token_ms": first_token_ms}}


# -- check ------------------------------------------------------------------------------------------
def check(state: ChatState, runtime: Runtime[PipelineContext]) -> dict:
    started = time.perf_counter()
    write = runtime.stream_writer
    if state.get("crisis"):
        write({"token": safety.CRISIS_REPLY})
        return {"answer": safety.CRISIS_REPLY, "safety": ["self_harm"], "timings": {"check_ms": _ms(started)}}
    text = state.get("answer", "")
    fired = safety.disclaimers(state["question"], text) if state.get("covered") else []
    if fired:
        note = "\n\n" + " ".join(disclaimer for _, disclaimer in fired)
        write({"token": note})
        text += note
    return {"answer": text, "safety": [name for name, _ in fired], "timings": {"check_ms": _ms(started)}}
