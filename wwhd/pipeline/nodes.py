"""The four nodes. Each takes (state, runtime) and returns only the keys it changes."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict

from langgraph.runtime import Runtime

from ..knowledge.index import IndexUnavailable
from ..providers.base import AnswerRequest, Usage
from ..retrieval.passages import to_citation
from ..retrieval.query import keyword_scores, standalone_query
from . import prompts, safety
from .context import PipelineContext
from .state import ChatState

log = logging.getLogger(__name__)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


# -- route ------------------------------------------------------------------------------------------
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
    # The namespaces whose vocabulary the question uses most (ties kept, up to three).
    picked = [name for name in ranked if scores[name] >= max(1, top / 2)][:3]
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
def retrieve(state: ChatState, runtime: Runtime[PipelineContext]) -> dict:
    started = time.perf_counter()
    ctx = runtime.context
    routed = state.get("namespaces") or []
    hinted = state.get("route_method") == "hint"
    try:
        found = ctx.retriever.retrieve(state["query"], routed, hinted)
    except IndexUnavailable as exc:
        log.warning("retrieval unavailable", extra={"error": str(exc)[:200]})
        return {
            "passages": [],
            "kb_available": False,
            "covered": False,
            "timings": {"retrieve_ms": _ms(started)},
        }
    evidence = found.evidence
    return {
        "passages": found.passages,
        "kb_available": True,
        "covered": found.covered,
        "evidence": asdict(evidence) if evidence else None,
        "namespaces": ctx.retriever.namespaces_for(found.talks, routed, hinted),
        # Local embeddings cost nothing: only metered usage becomes a row.
        "usage": [u.to_dict() for u in found.usage if u.total_tokens],
        "timings": {"retrieve_ms": _ms(started)},
    }


# -- answer -----------------------------------------------------------------------------------------
def used_citations(text: str, passages: list[dict]) -> list[dict]:
    """Citations for the passages the answer cites ([n]); `position` keeps n for the reader."""
    used = {int(n) for n in prompts.CITE_RE.findall(text)}
    return [to_citation(p, n) for n, p in enumerate(passages, start=1) if n in used]


def _fixed_reply(text: str, write) -> dict:
    write({"citations": []})
    write({"token": text})
    return {"answer": text, "citations": []}


def answer(state: ChatState, runtime: Runtime[PipelineContext]) -> dict:
    started = time.perf_counter()
    ctx = runtime.context
    write = runtime.context.writer(runtime)
    if not state.get("kb_available", True):
        return {
            **_fixed_reply(prompts.KB_UNAVAILABLE, write),
            "timings": {"answer_ms": _ms(started)},
        }
    passages = state.get("passages") or []
    if not state.get("covered") or not passages:
        return {
            **_fixed_reply(prompts.NOT_COVERED, write),
            "covered": False,
            "timings": {"answer_ms": _ms(started)},
        }
    request = AnswerRequest(
        question=state["question"],
        query=state["query"],
        passages=passages,
        messages=prompts.answer_messages(state["question"], passages, state.get("history") or []),
    )
    if ctx.chat_model.offline:
        # The offline answer quotes a few passages: show and save exactly those.
        pieces = list(ctx.chat_model.stream_answer(request))
        text = "".join(p for p in pieces if isinstance(p, str))
        cited = used_citations(text, passages)
        write({"citations": [to_citation(p) for p in passages[: len(cited)]]})
        for piece in pieces:
            if isinstance(piece, str):
                ctx.check_cancelled()
                write({"token": piece})
        usage = next((p for p in pieces if isinstance(p, Usage)), Usage(model=ctx.chat_model.name))
        return {
            "answer": text,
            "citations": cited,
            "usage": [usage.to_dict()],
            "llm_calls": 0,
            "timings": {"answer_ms": _ms(started), "first_token_ms": _ms(started)},
        }
    usage = Usage(model=ctx.chat_model.name)
    first_token_ms = None
    parts: list[str] = []
    held: list[str] = []  # the model's first words, until they show whether it answers
    decided = False
    for piece in ctx.chat_model.stream_answer(request):
        ctx.check_cancelled()
        if isinstance(piece, Usage):
            usage = piece
            continue
        if first_token_ms is None:
            first_token_ms = _ms(started)
        parts.append(piece)
        if decided:
            write({"token": piece})
            continue
        held.append(piece)
        verdict = prompts.is_answer("".join(held))
        if verdict is None:
            continue
        decided = True
        if not verdict:
            break  # the model says the passages do not answer: stop paying for tokens
        write({"citations": [to_citation(p) for p in passages]})
        for token in held:
            write({"token": token})
    text = "".join(parts)
    if not decided:  # a very short reply: decide on all of it
        decided, verdict = True, prompts.is_answer(text, final=True)
        if verdict:
            write({"citations": [to_citation(p) for p in passages]})
            write({"token": text})
    result = {
        "usage": [usage.to_dict()],
        "llm_calls": 0 if ctx.chat_model.offline else 1,
        "timings": {"answer_ms": _ms(started), "first_token_ms": first_token_ms},
    }
    if not verdict:
        return {**result, **_fixed_reply(prompts.NOT_COVERED, write), "covered": False}
    return {**result, "answer": text, "citations": used_citations(text, passages)}


# -- check ------------------------------------------------------------------------------------------
def check(state: ChatState, runtime: Runtime[PipelineContext]) -> dict:
    started = time.perf_counter()
    write = runtime.context.writer(runtime)
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
