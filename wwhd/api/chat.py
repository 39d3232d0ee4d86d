"""Ask a question: streamed over SSE, or as one JSON reply, and resume a stream that dropped. All
of them read the events the turn's worker writes to the stream store (wwhd/turns.py)."""

from __future__ import annotations

from flask import current_app

from .. import accounts, limits, logs, sse, turns
from ..conversations import parse_message_body, start_turn
from ..deps import get_deps
from ..errors import ApiError, NotFound, ServiceUnavailable, ValidationError
from ..extensions import db
from ..knowledge.namespaces import load_registry
from ..models import Chat, Message
from ..streams import fallback, get_store
from . import SSE, Blueprint, schemas

bp = Blueprint("chat", __name__, description="Ask a question")


def _begin_turn(body: dict) -> sse.Follower:
    """Request-bound work (validate, save the user's message, commit), then start the worker."""
    limits.check_quota(
        accounts.current_user()
    )  # before anything is saved: a refused turn leaves no trace
    registry = tuple(load_registry())  # read once: validates the hint here, routes in the pipeline
    content, chat_id, namespace = parse_message_body(
        body, current_app.config["MAX_MESSAGE_CHARS"], {ns.name for ns in registry}
    )
    turn = start_turn(accounts.current_user(), content, chat_id, namespace)
    db.session.commit()
    app = current_app._get_current_object()
    # The worker outlives the request: it gets the ids its log lines carry, not the context.
    return turns.begin(
        app, get_deps(app), turn, registry, logs.request_ids(), app.config["SSE_PING_SECONDS"]
    )


@bp.post("/chat/stream")
@accounts.require_role("user")
@bp.arguments(schemas.ChatRequest)
@bp.doc(responses={"200": SSE})
def stream(body: dict):
    """Ask; the answer streams as server-sent events"""
    return sse.response(_begin_turn(body))


@bp.get("/messages/<message_id>/events")
@accounts.require_role("user")
@bp.arguments(schemas.ResumeHeaders, location="headers")
@bp.doc(responses={"200": SSE})
def resume(headers: dict, message_id: str):
    """Resume a dropped stream: the events after Last-Event-ID, then the live ones until done"""
    message = db.session.get(Message, message_id) if len(message_id) <= 36 else None
    chat = db.session.get(Chat, message.chat_id) if message is not None else None
    # Another user's message is indistinguishable from a missing one.
    if chat is None or chat.user_id != accounts.current_user().id or message.role != "assistant":
        raise NotFound("Message not found.")
    app = current_app._get_current_object()
    after = headers["last_event_id"]
    store = _store_holding(app, message_id)
    if store is None:
        raise ApiError(
            "This answer's events are no longer kept; read it from its chat.",
            status=410,
            code="STREAM_EXPIRED",
        )
    if after > store.length(message_id):  # no reader was sent that id: it would wait forever
        raise ValidationError(
            "Last-Event-ID is beyond this answer's events.",
            fields=[{"field": "Last-Event-ID", "message": "beyond the last event"}],
        )
    db.session.remove()  # the response may stream for minutes: give the connection back now
    return sse.response(sse.Follower(store, message_id, after, app.config["SSE_PING_SECONDS"]))


def _store_holding(app, message_id: str):
    """The store with the message's events: the shared one, or this process's fallback memory
    (turns that started while Redis was down). None when neither has them."""
    try:
        if get_store(app).exists(message_id):
            return get_store(app)
    except Exception as exc:  # Redis unreachable
        if not fallback(app).exists(message_id):
            raise ServiceUnavailable(
                "Resuming is unavailable right now; read the answer from its chat."
            ) from exc
    return fallback(app) if fallback(app).exists(message_id) else None


@bp.post("/chat")
@accounts.require_role("user")
@bp.arguments(schemas.ChatRequest)
@bp.response(200, schemas.ChatReply)
def answer(body: dict):
    """Ask; one JSON reply (the same pipeline as the stream)"""
    follower = _begin_turn(body)
    reply = {"content": "", "citations": []}
    for event, data in follower.events():
        if event == "start":
            reply.update(chat_id=data["chat_id"], message_id=data["message_id"])
        elif event == "token":
            reply["content"] += data["content"]
        elif event == "citation":
            reply["citations"] = data["citations"]
        elif event == "metadata":
            reply.update(data)
        elif event == "error":
            raise ServiceUnavailable(
                data["message"],
                code=data["code"],
                extra={"chat_id": reply.get("chat_id"), "message_id": reply.get("message_id")},
            )
    reply["status"] = "complete"
    return reply
