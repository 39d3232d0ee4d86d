"""One chat turn: run the pipeline in a worker of its own that writes every event to the stream
store (wwhd/streams.py) and always saves the answer. HTTP responses only read the store, so a
client that drops loses nothing: it reconnects with Last-Event-ID and reads the rest.

The worker keeps generating while nobody reads for STREAM_GRACE_SECONDS (a phone switching
networks comes back), then stops and saves what it has as `interrupted`. No turn runs longer than
TURN_MAX_SECONDS: that bound is the lease stuck_turns.py relies on to close the turns of a worker
that died.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING

from flask import Flask

from . import logs, metrics, sse, streams
from .conversations import Turn, finish_turn
from .knowledge.namespaces import NamespaceInfo

if (
    TYPE_CHECKING
):  # the pipeline imports langgraph and qdrant_client: loaded per turn (wwhd/lazy.py)
    from .deps import Deps
    from .pipeline.context import PipelineContext

log = logging.getLogger(__name__)
_END = object()
PRESENCE_CHECK_SECONDS = 0.5  # how often the worker asks the store whether anyone still reads
MAX_COALESCE_MS = 25  # a token never waits longer than this for company
# How long the pipeline waits for the worker to send the first token before reading on (a bound
# only: the worker answers within a greenlet switch).
FIRST_TOKEN_HANDOFF_S = 0.05
FAILED_MESSAGE = "Something went wrong while answering. Please try again."


def classify_failure(exc: BaseException) -> tuple[str, str]:
    """(code, user-facing message) for a pipeline failure; details go to the log, not the client.
    Providers raise ProviderError with both; anything else is our own bug."""
    from .providers.base import ProviderError

    if isinstance(exc, ProviderError):
        return exc.code, exc.user_message
    return "INTERNAL_ERROR", FAILED_MESSAGE


class _Handoff:
    """The pipeline's side of the queue to the worker. At the first token it waits until the
    worker has sent it: an answer already buffered in the socket (a fast provider, or one that
    sends in bursts) would otherwise be parsed to its end, and the answer's row saved, before the
    worker and the response greenlet run — the first token went out with the last one. Under
    gevent the wake-ups run in order, so the response writes the frame before the pipeline reads
    on."""

    def __init__(self, out: queue.Queue):
        self.out = out
        self.first_sent = threading.Event()
        self.waited = False

    def put(self, item) -> None:
        self.out.put(item)
        if not self.waited and item is not _END and item[0] == "token":
            self.waited = True
            self.first_sent.wait(FIRST_TOKEN_HANDOFF_S)


def _pump(
    app: Flask, deps: Deps, turn: Turn, ctx: PipelineContext, out: _Handoff, ids: dict
) -> None:
    from .pipeline.context import Cancelled
    from .pipeline.graph import run_turn_into

    logs.bind_ids(ids)
    state = {
        "question": turn.question,
        "history": turn.history,
        "namespace_hint": turn.namespace_hint,
    }
    try:
        with app.app_context():
            run_turn_into(deps.graph, state, ctx, out.put)
    except Cancelled:
        out.put(("cancelled", None))
    except Exception as exc:  # reported to the client as one `error` event
        out.put(("failed", exc))
    finally:
        out.put(_END)


class Coalescer:
    """At most one `token` frame per `window`: a token that comes after a quiet window goes out at
    once (an answer's first among them); one that comes sooner joins the pending frame, which
    goes out `window` after the previous frame. Fewer frames and socket writes (clients
    concatenate `content` anyway), no token waits longer than `window`, and tokens that arrive
    spaced out (a provider streaming at its own pace) cost no timer wake-up each."""

    def __init__(self, window: float):
        self.window = window
        self.pending: list[str] = []
        self.deadline: float | None = None  # when the pending frame is due
        self.sent_at = float("-inf")

    def add(self, token: str, now: float) -> list[str]:
        """Take a token; the texts to send now."""
        if self.deadline is not None and now >= self.deadline:  # overdue: leaves with this one
            self.pending.append(token)
            return [self.take(now)]
        if self.deadline is None and now - self.sent_at >= self.window:
            self.sent_at = now
            return [token]
        self.pending.append(token)
        if self.deadline is None:
            self.deadline = self.sent_at + self.window
        return []

    def due(self, now: float) -> str | None:
        return self.take(now) if self.deadline is not None and now >= self.deadline else None

    def take(self, now: float | None = None) -> str | None:
        if not self.pending:
            return None
        text = "".join(self.pending)
        self.pending, self.deadline = [], None
        if now is not None:
            self.sent_at = now
        return text


class TurnWorker:
    """Runs one turn to its end, independent of any HTTP response."""

    def __init__(
        self,
        app: Flask,
        deps: Deps,
        turn: Turn,
        registry: tuple[NamespaceInfo, ...],
        ids: dict,
        store,
    ):
        from .pipeline.context import PipelineContext

        cfg = app.config
        self.app, self.deps, self.turn, self.ids = app, deps, turn, ids
        self.key = turn.assistant_message_id
        self.store = store
        self.ctx = PipelineContext(chat_model=deps.chat_model, index=deps.index, registry=registry)
        self.grace = float(cfg["STREAM_GRACE_SECONDS"])
        self.max_seconds = float(cfg["TURN_MAX_SECONDS"])
        self.coalescer = Coalescer(min(float(cfg["SSE_COALESCE_MS"]), MAX_COALESCE_MS) / 1000)
        self.numbered = 0
        self.tokens: list[str] = []
        self.citations: list[dict] = []
        self.saved = False
        self.ended = False  # a terminal event (done, error) is in the stream

    # -- events ------------------------------------------------------------------------------
    def emit(self, event: str, data: dict) -> None:
        self.store.append(self.key, self.numbered + 1, [(event, sse.payload(event, data))])
        self.numbered += 1
        self.ended = self.ended or event in sse.TERMINAL

    def flush(self, text: str | None) -> None:
        if text:
            self.emit("token", {"content": text})

    # -- saving ------------------------------------------------------------------------------
    def save(self, status: str, final: dict | None, error: str | None = None) -> None:
        self.saved = True
        partial = dict(final or {})
        partial.setdefault("citations", self.citations)
        text = "".join(self.tokens)
        with self.app.app_context():
            finish_turn(
                self.turn,
                text if final is None else final.get("answer", text),
                status,
                partial,
                error,
                self.deps.chat_model.name,
            )

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        logs.bind_ids(self.ids)
        try:
            self._run()
        except Exception:  # the store or the database failed: the client gets no `done`
            log.exception("turn worker failed", extra={"chat_id": self.turn.chat_id})
        finally:
            self.ctx.cancel.set()
            if not self.saved:
                try:
                    self.save("interrupted", None, "worker stopped")
                except Exception:
                    log.exception("saving an interrupted turn failed")
            if not self.ended:  # readers must not wait for an end that never comes
                try:
                    self.emit("error", {"code": "INTERNAL_ERROR", "message": FAILED_MESSAGE})
                except Exception:
                    log.warning("could not end the stream of a failed turn")

    def _run(self) -> None:
        turn = self.turn
        started = time.monotonic()
        out: queue.Queue = queue.Queue()
        handoff = _Handoff(out)
        pump = threading.Thread(
            target=_pump,
            args=(self.app, self.deps, turn, self.ctx, handoff, self.ids),
            daemon=True,
            name="wwhd-pipeline",
        )
        self.emit("start", {"chat_id": turn.chat_id, "message_id": turn.assistant_message_id})
        pump.start()
        alone_since: float | None = None
        checked = started
        while True:
            now = time.monotonic()
            if now - checked >= PRESENCE_CHECK_SECONDS or self.grace == 0:
                checked = now
                if self.store.readers(self.key):
                    alone_since = None
                elif alone_since is None:
                    alone_since = now
                if alone_since is not None and now - alone_since >= self.grace:
                    return self._stop("interrupted", "client disconnected")
            if now - started >= self.max_seconds:
                return self._stop("interrupted", "turn took longer than TURN_MAX_SECONDS")
            wait = PRESENCE_CHECK_SECONDS
            if self.coalescer.deadline is not None:
                wait = max(0.0, min(wait, self.coalescer.deadline - now))
            try:
                item = out.get(timeout=wait)
            except queue.Empty:
                self.flush(self.coalescer.due(time.monotonic()))
                continue
            if item is _END:
                return self._stop("interrupted", "pipeline ended without an answer")
            kind, payload = item
            if kind == "token":
                self.tokens.append(payload)
                for text in self.coalescer.add(payload, time.monotonic()):
                    self.flush(text)
                if len(self.tokens) == 1:  # the coalescer sent it at once (nothing came before)
                    handoff.first_sent.set()
                continue
            self.flush(self.coalescer.take())
            if kind == "citations":
                self.citations = payload
                self.emit("citation", {"citations": payload})
            elif kind == "final":
                return self._complete(payload, started)
            elif kind == "failed":
                return self._fail(payload)
            elif kind == "cancelled":
                return self._stop("interrupted", "cancelled")

    def _complete(self, final: dict, started: float) -> None:
        turn = self.turn
        final["timings"] = {
            **final.get("timings", {}),
            "total_ms": round((time.monotonic() - started) * 1000, 2),
        }
        self.save("complete", final)
        metrics.record_turn(self.app.config, final, turn.user_id, turn.assistant_message_id)
        self.emit(
            "metadata",
            {
                "usage": _usage_summary(final.get("usage", [])),
                "namespaces": final.get("namespaces", []),
                "model": self.deps.chat_model.name,
                "timings": final["timings"],
                "covered": final.get("covered", False),
                "llm_calls": final.get("llm_calls", 0),
            },
        )
        self.emit("done", {"chat_id": turn.chat_id, "message_id": turn.assistant_message_id})

    def _fail(self, exc: BaseException) -> None:
        code, message = classify_failure(exc)
        # Type and HTTP status only: provider messages can echo part of the API key.
        log.error(
            "turn failed",
            extra={
                "chat_id": self.turn.chat_id,
                "error_type": type(exc.__cause__ or exc).__name__,
                "error_code": code,
                "status_code": getattr(exc, "status_code", None),
            },
        )
        self.save("failed", None, f"{code}: {type(exc.__cause__ or exc).__name__}")
        metrics.record_turn_error(self.app.config, code, self.turn.user_id)
        self.emit("error", {"code": code, "message": message})

    def _stop(self, status: str, reason: str) -> None:
        """Stop generating, save what was streamed, and end the stream for a late reader."""
        self.ctx.cancel.set()
        self.flush(self.coalescer.take())  # the stream holds exactly the saved text
        self.save(status, None, reason)
        self.emit(
            "error",
            {"code": "INTERRUPTED", "message": "The answer stopped before it was complete."},
        )


def begin(
    app: Flask,
    deps: Deps,
    turn: Turn,
    registry: tuple[NamespaceInfo, ...],
    ids: dict,
    ping: float,
) -> sse.Follower:
    """Start the turn's worker; returns the response's reader of its events. The stream exists
    and the reader holds its lease before the worker starts, so even a grace period of 0 cannot
    see an empty room before the first read."""
    store = streams.get_store(app)
    try:
        store.create(turn.assistant_message_id)
    except Exception:  # Redis unreachable: the answer still streams, from this process's memory
        log.warning("stream store unavailable; streaming from memory", exc_info=True)
        store = streams.fallback(app)
        store.create(turn.assistant_message_id)
    follower = sse.Follower(store, turn.assistant_message_id, 0, ping)
    worker = TurnWorker(app, deps, turn, registry, ids, store)
    thread = threading.Thread(target=_tracked, args=(app, worker), daemon=True, name="wwhd-turn")
    app.extensions.setdefault("wwhd_turns", {})[turn.assistant_message_id] = thread
    thread.start()
    return follower


def _tracked(app: Flask, worker: TurnWorker) -> None:
    try:
        worker.run()
    finally:
        app.extensions.get("wwhd_turns", {}).pop(worker.key, None)


def wait(app: Flask, message_id: str, timeout: float = 30) -> bool:
    """Block until this process's worker for the message has finished (tests, shutdown); True
    when none runs any more."""
    thread = app.extensions.get("wwhd_turns", {}).get(message_id)
    if thread is not None:
        thread.join(timeout)
        return not thread.is_alive()
    return True


def _usage_summary(usages: list[dict]) -> dict:
    prompt = sum(u.get("prompt_tokens", 0) for u in usages)
    completion = sum(u.get("completion_tokens", 0) for u in usages)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "by_model": usages,
    }
