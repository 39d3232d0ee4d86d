"""Ask a question: streamed over SSE, or as one JSON reply, and resume a stream that dropped. All
of them read the events the turn's worker writes to the stream store (wwhd/turns.py)."""

from __future__ import annotations

from flask import current_app

from .. import accounts, limits, logs, sse, turns
from ..conversations import parse_message_body, start_turn
from ..deps import get_deps
from ..errors import ApiError, NotFound, ServiceUnavailable
from ..extensions import db
from ..knowledge.namespaces import load_registry
from ..models import Chat, Message
from ..streams import get_store
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
    store = get_store(app)
    if not store.exists(message_id):
        raise ApiError(
            "This answer's events are no longer kept; read it from its chat.",
            status=410,
            code="STREAM_EXPIRED",
        )
    db.session.remove()  # the response may stream for minutes: give the connection back now
    follower = sse.Follower(store, message_id, headers["last_event_id"], app.config["SSE_PING_SECONDS"])
    return sse.response(follower)


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
