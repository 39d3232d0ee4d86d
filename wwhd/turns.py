"""One chat turn: run the pipeline in a worker, relay its events, and always save the answer."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from flask import Flask

from . import metrics
from .conversations import Turn, finish_turn
from .knowledge.namespaces import NamespaceInfo

if (
    TYPE_CHECKING
):  # the pipeline imports langgraph and qdrant_client: loaded per turn (wwhd/lazy.py)
    from .deps import Deps
    from .pipeline.context import PipelineContext

log = logging.getLogger(__name__)
_END = object()


def classify_failure(exc: BaseException) -> tuple[str, str]:
    """(code, user-facing message) for a pipeline failure; details go to the log, not the client."""
    try:
        import openai

        if isinstance(exc, openai.RateLimitError):
            return (
                "LLM_RATE_LIMITED",
                "The language model is busy (rate limited). Please try again shortly.",
            )
        if isinstance(exc, (openai.APITimeoutError, TimeoutError)):
            return "LLM_TIMEOUT", "The language model took too long to respond. Please try again."
        if isinstance(exc, (openai.APIError, openai.APIConnectionError)):
            return "LLM_ERROR", "The language model failed while answering. Please try again."
    except ImportError:  # pragma: no cover
        pass
    return "INTERNAL_ERROR", "Something went wrong while answering. Please try again."


def _pump(app: Flask, deps: Deps, turn: Turn, ctx: PipelineContext, out: queue.Queue) -> None:
    from .pipeline.context import Cancelled
    from .pipeline.graph import run_turn

    state = {
        "question": turn.question,
        "history": turn.history,
        "namespace_hint": turn.namespace_hint,
    }
    try:
        with app.app_context():
            for event in run_turn(deps.graph, state, ctx):
                out.put(event)
    except Cancelled:
        out.put(("cancelled", None))
    except Exception as exc:  # reported to the client as one `error` event
        out.put(("failed", exc))
    finally:
        out.put(_END)


def turn_events(
    app: Flask, deps: Deps, turn: Turn, ping_seconds: float, registry: tuple[NamespaceInfo, ...]
) -> Iterator[tuple[str, dict | None]]:
    """Yield (event, data) in the SSE contract's order, ("ping", None) during silences.

    The answer is saved exactly once: before `done`, as failed after an error, or as interrupted
    (with what was streamed so far) when the consumer stops early — a client disconnect.
    """
    from .pipeline.context import PipelineContext

    ctx = PipelineContext(chat_model=deps.chat_model, index=deps.index, registry=registry)
    out: queue.Queue = queue.Queue()
    started = time.perf_counter()
    worker = threading.Thread(
        target=_pump, args=(app, deps, turn, ctx, out), daemon=True, name="wwhd-turn"
    )
    tokens: list[str] = []
    citations: list[dict] = []
    saved = False

    def save(status: str, final: dict | None, error: str | None = None) -> None:
        nonlocal saved
        saved = True
        partial = dict(final or {})
        partial.setdefault("citations", citations)
        with app.app_context():
            finish_turn(
                turn,
                "".join(tokens) if final is None else final.get("answer", "".join(tokens)),
                status,
                partial,
                error,
                deps.chat_model.name,
            )

    yield "start", {"chat_id": turn.chat_id, "message_id": turn.assistant_message_id}
    worker.start()
    try:
        while True:
            try:
                item = out.get(timeout=ping_seconds)
            except queue.Empty:
                yield "ping", None
                continue
            if item is _END:
                break
            kind, payload = item
            if kind == "citations":
                citations = payload
                yield "citation", {"citations": payload}
            elif kind == "token":
                tokens.append(payload)
                yield "token", {"content": payload}
            elif kind == "final":
                final = payload
                final["timings"] = {
                    **final.get("timings", {}),
                    "total_ms": round((time.perf_counter() - started) * 1000, 2),
                }
                save("complete", final)
                metrics.record_turn(app.config, final, turn.user_id, turn.assistant_message_id)
                yield (
                    "metadata",
                    {
                        "usage": _usage_summary(final.get("usage", [])),
                        "namespaces": final.get("namespaces", []),
                        "model": deps.chat_model.name,
                        "timings": final["timings"],
                        "covered": final.get("covered", False),
                        "llm_calls": final.get("llm_calls", 0),
                    },
                )
                yield "done", {"chat_id": turn.chat_id, "message_id": turn.assistant_message_id}
                return
            elif kind == "failed":
                code, message = classify_failure(payload)
                # Type and HTTP status only: provider messages can echo part of the API key.
                log.error(
                    "turn failed",
                    extra={
                        "chat_id": turn.chat_id,
                        "error_type": type(payload).__name__,
                        "error_code": code,
                        "status_code": getattr(payload, "status_code", None),
                    },
                )
                save("failed", None, f"{code}: {type(payload).__name__}")
                metrics.record_turn_error(app.config, code, turn.user_id)
                yield "error", {"code": code, "message": message}
                return
            elif kind == "cancelled":
                break
    finally:
        ctx.cancel.set()  # stop generating for a client that is gone
        if not saved:
            save("interrupted", None, "client disconnected")


def _usage_summary(usages: list[dict]) -> dict:
    prompt = sum(u.get("prompt_tokens", 0) for u in usages)
    completion = sum(u.get("completion_tokens", 0) for u in usages)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "by_model": usages,
    }
