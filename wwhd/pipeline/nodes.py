"""The four nodes. Each takes (state, runtime) and returns only the keys it changes."""

from __future__ import annotations

import logging
import re
import time

from langgraph.runtime import Runtime

from ..knowledge.index import Hit, IndexUnavailable
from ..knowledge.sparse import (
    QueryTerm,
    analyze_query,
    is_common,
    matched_weight,
    term_set,
    tokenize,
)
from ..knowledge.sparse import coverage as idea_coverage
from ..links import citation_timestamp, deep_link
from ..providers.base import AnswerRequest, Usage
from . import prompts, safety
from .context import PipelineContext
from .state import ChatState

log = logging.getLogger(__name__)

FOLLOW_UP_RE = re.compile(
    r"\b(it|that|this|those|these|them|he|his|him|she|her|they|their|there|more|else|again|"
    r"also|instead|still|what about|how about|and|then|why|example|longer|how long|how often)\b",
    re.I,
)
FOLLOW_UP_MAX_TERMS = 10  # a longer question stands on its own even if it says "it"
FOLLOW_UP_DEPTH = 3  # earlier user turns a chain of follow-ups may reach back to
SAME_SOURCE_WINDOW_S = 90  # two hits of one video closer than this are one citation
KEYWORD_RELATED_CREDIT = (
    0.8  # a synonym of a namespace keyword (sparse.RELATED) counts almost fully
)
MIN_KEYWORD_SCORE = 0.8  # everyday words alone (0.3 each, sparse.COMMON_WORDS) do not route
ROUTED_BOOST = 0.25  # retrieval prior for hits in the routed namespaces (not a filter)
ON_TOPIC_COVERAGE = 0.6  # share of min_coverage enough when the best passage is on the routed topic
MAX_UNKNOWN_SHARE = 0.5  # an on-topic answer still needs most of the question to exist in the KB
COVERAGE_FLOOR = (
    0.1  # rerank factor is COVERAGE_FLOOR + coverage: coverage matters, BM25 still counts
)
HINT_BOOST = 0.5  # a stronger prior for the namespace the client asked for


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


# -- route ------------------------------------------------------------------------------------------
def is_follow_up(question: str) -> bool:
    terms = tokenize(question)
    return len(terms) <= 3 or (
        len(terms) <= FOLLOW_UP_MAX_TERMS and bool(FOLLOW_UP_RE.search(question))
    )


def standalone_query(question: str, history: list[dict], _depth: int = FOLLOW_UP_DEPTH) -> str:
    """Rewrite a follow-up into a stand-alone query by carrying the earlier question's words.

    A rule, not an LLM call: it keeps the common path at one LLM call per answer, and for hybrid
    search the earlier question's words are what a rewrite would add anyway. The earlier question
    is itself resolved first, so a chain of follow-ups keeps the topic it started from.
    """
    users = [
        i for i, turn in enumerate(history) if turn.get("role") == "user" and turn.get("content")
    ]
    if not users or _depth <= 0 or not is_follow_up(question):
        return question
    last = users[-1]
    previous = standalone_query(history[last]["content"], history[:last], _depth - 1)
    return f"{previous} {question}"


def keyword_scores(query: str, registry) -> dict[str, float]:
    """Namespace → evidence from its keywords, name and description: each query idea adds its
    weight when it is a keyword (everyday words weigh less), KEYWORD_RELATED_CREDIT of it when
    only a term related to a keyword is (so "paycheck" finds money without being a keyword)."""
    ideas = analyze_query(query)
    scores: dict[str, float] = {}
    for ns in registry:
        if ns.name == "general":
            continue
        vocabulary = term_set(
            " ".join(ns.keywords) + " " + ns.name.replace("_", " ") + " " + ns.description
        )
        score = matched_weight(ideas, vocabulary, KEYWORD_RELATED_CREDIT)
        if score:
            scores[ns.name] = round(score, 3)
    return scores


def route(state: ChatState, runtime: Runtime[PipelineContext]) -> dict:
    started = time.perf_counter()
    ctx = runtime.context
    question = state["question"]
    if safety.is_crisis(question):
        return {
            "crisis": True,
            "namespaces": [],
            "route_confidence": 1.0,
            "route_method": "safety",
            "query": question,
            "timings": {"route_ms": _ms(started)},
        }
    query = standalone_query(question, state.get("history") or [])
    known = {ns.name for ns in ctx.registry}
    scores = keyword_scores(query, ctx.registry)
    ranked = sorted(scores, key=lambda name: (-scores[name], name))
    top = scores[ranked[0]] if ranked else 0.0
    picked = [name for name in ranked if scores[name] >= max(MIN_KEYWORD_SCORE, top / 2)][:3]
    method, confidence, usage, calls = (
        "keywords",
        min(1.0, 0.4 + 0.2 * top) if picked else 0.0,
        [],
        0,
    )
    hint = state.get("namespace_hint")
    if hint in known and hint != "general":
        picked = [hint] + [name for name in picked if name != hint][:2]
        method, confidence = "hint", 1.0
    if not picked and ctx.llm_routing and not ctx.chat_model.offline:
        catalogue = [(ns.name, ns.description) for ns in ctx.registry]
        reply, llm_usage = ctx.chat_model.complete(prompts.router_messages(query, catalogue))
        picked = [
            name
            for name in re.findall(r"[a-z_]+", reply.lower())
            if name in known and name != "general"
        ][:3]
        usage, calls = [llm_usage.to_dict()], 1
        method, confidence = "llm", 0.6 if picked else 0.0
    if not picked and not calls:
        method = "retrieval"  # retrieve searches everything and the hits decide
    namespaces = picked + ["general"] if picked else []
    return {
        "query": query,
        "namespaces": namespaces,
        "route_confidence": round(confidence, 2),
        "route_method": method,
        "crisis": False,
        "usage": usage,
        "llm_calls": calls,
        "timings": {"route_ms": _ms(started)},
    }


# -- retrieve ---------------------------------------------------------------------------------------
def coverage(query_terms: set[str] | list[QueryTerm], text: str) -> float:
    """Share of the query the text holds: weighted ideas (related terms count) or a plain term set."""
    if query_terms and not isinstance(next(iter(query_terms)), QueryTerm):
        return len(set(query_terms) & term_set(text)) / len(query_terms)
    return idea_coverage(list(query_terms), text)


def _duplicate(chosen: list[dict], p: dict) -> bool:
    return any(
        c["document_id"] == p.get("document_id")
        and (
            (
                c["moment_s"] is not None
                and p.get("moment_s") is not None
                and abs(c["moment_s"] - p["moment_s"]) < SAME_SOURCE_WINDOW_S
            )
            or (
                c["start_s"] is None
                and p.get("start_s") is None
                and c["page"] == p.get("page")
                and abs(c["chunk_index"] - p.get("chunk_index", 0)) <= 1
            )
        )
        for c in chosen
    )


MOMENT_WINDOW_CHARS = 400  # enough words around a line to judge it; short cues borrow from the next


def best_moment(payload: dict, ideas: list[QueryTerm]) -> float | None:
    """The second within a chunk where the question's words are said: the start of its best
    matching timed line (earliest on a tie), else the chunk's start."""
    marks = payload.get("marks") or []
    moment = payload.get("start_s")
    if len(marks) < 2 or not ideas:
        return moment
    text = payload.get("text", "")
    best = (0.0, 0.0)
    for i, (offset, second) in enumerate(marks):
        own_end = marks[i + 1][0] if i + 1 < len(marks) else len(text)
        # The line itself decides; the text after it only breaks ties between lines.
        score = (
            round(coverage(ideas, text[offset:own_end]), 6),
            round(coverage(ideas, text[offset : offset + MOMENT_WINDOW_CHARS]), 6),
        )
        if score > best:
            moment, best = second, score
    return moment


def _passage(hit: Hit, ideas: list[QueryTerm]) -> dict:
    p = hit.payload
    moment = best_moment(p, ideas)
    return {
        "chunk_id": hit.chunk_id,
        "document_id": p.get("document_id"),
        "title": p.get("title", ""),
        "text": p.get("text", ""),
        "namespace": p.get("namespace", ""),
        "start_s": p.get("start_s"),
        "end_s": p.get("end_s"),
        "moment_s": moment,
        "page": p.get("page"),
        "chunk_index": p.get("chunk_index", 0),
        "youtube_url": p.get("youtube_url") or "",
        "source_url": p.get("source_url") or "",
        "url": deep_link({**p, "start_s": moment}),
        "timestamp": citation_timestamp(moment),
        "score": round(float(hit.score), 4),
    }


def select_passages(hits: list[Hit], query: str, ctx: PipelineContext) -> list[dict]:
    """Relative cut-off against the best hit, then one passage per source and time window.

    Hits are in rank order. Kept: BM25 at least `relative_cutoff` of the best, or (with dense
    vectors) cosine within 0.08 of the best — a gap relative to this query, never a fixed
    threshold. A covered question always gets a second source when one shares enough of it.
    """
    if not hits:
        return []
    ideas = analyze_query(query)
    top_sparse = max(h.sparse_score for h in hits)
    dense_scores = [h.dense_score for h in hits if h.dense_score is not None]
    top_dense = max(dense_scores) if dense_scores else None
    chosen: list[dict] = []
    spare: list[dict] = []  # below the cut-off but on topic: the second source if nothing else is
    for hit in hits:
        keep = hit.sparse_score >= top_sparse * ctx.relative_cutoff if top_sparse > 0 else False
        if top_dense is not None and hit.dense_score is not None:
            keep = keep or hit.dense_score >= top_dense - 0.08
        passage = _passage(hit, ideas)
        if _duplicate(chosen, passage):
            continue
        if keep:
            chosen.append(passage)
        elif len(spare) < 3 and coverage(ideas, passage["text"]) >= ctx.min_coverage / 2:
            spare.append(passage)
        if len(chosen) >= ctx.max_passages:
            break
    for passage in spare:
        if len(chosen) >= 2:
            break
        if not _duplicate(chosen, passage):
            chosen.append(passage)
    return chosen


def to_citation(passage: dict) -> dict:
    return {
        key: passage[key]
        for key in (
            "title",
            "url",
            "youtube_url",
            "timestamp",
            "namespace",
            "document_id",
            "chunk_id",
            "score",
        )
    }


def rerank(
    hits: list[Hit], namespaces: list[str], boost: float, ideas: list[QueryTerm] | None = None
) -> list[Hit]:
    """Scale each hit's score by how much of the question it covers, then by the routing prior.

    BM25 rewards a passage that repeats one of the question's words; a talk's overview names every
    topic once and outranks the passage that answers. Coverage of the question's ideas favours the
    passage that holds all of them. Routing is a prior, not a filter: hits in the routed namespaces
    gain `boost` of their score.
    """
    routed = set(namespaces) - {"general"}
    for hit in hits:
        factor = 1.0
        if ideas:
            factor *= COVERAGE_FLOOR + coverage(ideas, hit.payload.get("text", ""))
        if hit.payload.get("namespace") in routed:
            factor *= 1 + boost
        hit.score *= factor
        hit.sparse_score *= factor
    return sorted(hits, key=lambda h: -h.score)


def unknown_share(ideas: list[QueryTerm], hits: list[Hit]) -> float:
    """Share of the question's substantive weight (everyday words aside) that no candidate passage
    holds, not even as a related term: "ibuprofen" in a knowledge base that never mentions it.
    The candidates stand in for the whole collection, since a term it holds ranks its chunks high."""
    substantive = [idea for idea in ideas if not is_common(idea.term)]
    total = sum(idea.weight for idea in substantive)
    if not total:
        return 0.0
    seen: set[str] = set()
    for hit in hits:
        seen |= term_set(hit.payload.get("text", ""))
    missing = sum(
        idea.weight
        for idea in substantive
        if not (idea.own or {idea.term}) <= seen and not idea.related & seen
    )
    return missing / total


def _on_topic(hits: list[Hit], ideas: list[QueryTerm], routed: list[str]) -> bool:
    """The best-covering of the top hits is in a namespace the question's words point at, and
    most of what the question is about exists somewhere in the knowledge base."""
    topical = set(routed) - {"general"}
    if not hits or not topical or unknown_share(ideas, hits) > MAX_UNKNOWN_SHARE:
        return False
    best = max(hits[:3], key=lambda h: coverage(ideas, h.payload.get("text", "")))
    return best.payload.get("namespace") in topical


def retrieve(state: ChatState, runtime: Runtime[PipelineContext]) -> dict:
    started = time.perf_counter()
    ctx = runtime.context
    query = state["query"]
    ideas = analyze_query(query)
    routed = state.get("namespaces") or []
    hinted = state.get("route_method") == "hint"
    usage: list[dict] = []
    try:
        # A client's namespace choice narrows the search; keyword routing only ranks, because
        # people describe a money problem in the words of a marriage and the KB should still answer.
        hits, used = ctx.index.search(query, routed if hinted else None, ctx.search_limit)
        usage += [u.to_dict() for u in used]
        hits = rerank(hits, routed, HINT_BOOST if hinted else ROUTED_BOOST, ideas)
        best = max((coverage(ideas, h.payload.get("text", "")) for h in hits[:3]), default=0.0)
        if hinted and best < ctx.min_coverage:
            # The client's namespace has nothing on this: let the whole knowledge base compete.
            wide, used = ctx.index.search(query, None, ctx.search_limit)
            usage += [u.to_dict() for u in used]
            wide = rerank(wide, routed, HINT_BOOST, ideas)
            wide_best = max(
                (coverage(ideas, h.payload.get("text", "")) for h in wide[:3]), default=0.0
            )
            if wide_best > best:
                hits, best = wide, wide_best
    except IndexUnavailable as exc:
        log.warning("retrieval unavailable", extra={"error": str(exc)[:200]})
        return {
            "passages": [],
            "citations": [],
            "kb_available": False,
            "covered": False,
            "usage": usage,
            "timings": {"retrieve_ms": _ms(started)},
        }
    dense_ok = any(h.dense_score is not None and h.dense_score >= 0.55 for h in hits[:3])
    covered = bool(hits) and (
        best >= ctx.min_coverage
        or dense_ok
        or (
            # Two independent signals agree: the question's words point at a topic and the best
            # passage is from it. That lets a paraphrase through with less word overlap.
            best >= ctx.min_coverage * ON_TOPIC_COVERAGE and _on_topic(hits, ideas, routed)
        )
    )
    passages = select_passages(hits, query, ctx) if covered else []
    namespaces = routed
    if passages:
        # Retrieval confirms or corrects the router: the namespaces the answer draws on, best
        # first, then a client's hint; keyword guesses without a passage behind them drop out.
        drawn = [p["namespace"] for p in passages if p["namespace"] != "general"]
        first = [routed[0]] if hinted else []
        namespaces = list(dict.fromkeys(first + drawn))[:3] + ["general"]
    return {
        "passages": passages,
        "citations": [to_citation(p) for p in passages],
        "kb_available": True,
        "covered": bool(passages),
        "namespaces": namespaces,
        "usage": usage,
        "timings": {"retrieve_ms": _ms(started)},
    }


# -- answer -----------------------------------------------------------------------------------------
def answer(state: ChatState, runtime: Runtime[PipelineContext]) -> dict:
    started = time.perf_counter()
    ctx = runtime.context
    write = runtime.stream_writer
    if not state.get("kb_available", True) or not state.get("covered"):
        text = (
            prompts.KB_UNAVAILABLE if not state.get("kb_available", True) else prompts.NOT_COVERED
        )
        write({"token": text})
        return {"answer": text, "timings": {"answer_ms": _ms(started)}}
    request = AnswerRequest(
        question=state["question"],
        query=state["query"],
        passages=state["passages"],
        messages=prompts.answer_messages(
            state["question"], state["passages"], state.get("history") or []
        ),
    )
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
    return {
        "answer": "".join(parts),
        "usage": [usage.to_dict()],
        "llm_calls": 0 if ctx.chat_model.offline else 1,
        "timings": {"answer_ms": _ms(started), "first_token_ms": first_token_ms},
    }


# -- check ------------------------------------------------------------------------------------------
def check(state: ChatState, runtime: Runtime[PipelineContext]) -> dict:
    started = time.perf_counter()
    write = runtime.stream_writer
    if state.get("crisis"):
        write({"token": safety.CRISIS_REPLY})
        return {
            "answer": safety.CRISIS_REPLY,
            "safety": ["self_harm"],
            "timings": {"check_ms": _ms(started)},
        }
    text = state.get("answer", "")
    fired = safety.disclaimers(state["question"], text) if state.get("covered") else []
    if fired:
        note = "\n\n" + " ".join(disclaimer for _, disclaimer in fired)
        write({"token": note})
        text += note
    return {
        "answer": text,
        "safety": [name for name, _ in fired],
        "timings": {"check_ms": _ms(started)},
    }
