"""Ask a question: streamed over SSE, or as one JSON reply. Both run the same pipeline."""

from __future__ import annotations

from flask import current_app

from .. import accounts, limits, sse
from ..conversations import parse_message_body, start_turn
from ..deps import get_deps
from ..errors import ServiceUnavailable
from ..extensions import db
from ..knowledge.namespaces import load_registry
from ..turns import turn_events
from . import SSE, Blueprint, schemas

bp = Blueprint("chat", __name__, description="Ask a question")


def _begin_turn(body: dict):
    """Request-bound work: validate, save the user's message, commit — before any generation."""
    limits.check_quota(
        accounts.current_user()
    )  # before anything is saved: a refused turn leaves no trace
    registry = tuple(load_registry())  # read once: validates the hint here, routes in the pipeline
    content, chat_id, namespace = parse_message_body(
        body, current_app.config["MAX_MESSAGE_CHARS"], {ns.name for ns in registry}
    )
    turn = start_turn(accounts.current_user(), content, chat_id, namespace)
    db.session.commit()
    return turn, registry


@bp.post("/chat/stream")
@accounts.require_role("user")
@bp.arguments(schemas.ChatRequest)
@bp.doc(responses={"200": SSE})
def stream(body: dict):
    """Ask; the answer streams as server-sent events"""
    turn, registry = _begin_turn(body)
    app = current_app._get_current_object()
    deps = get_deps(app)
    ping = app.config["SSE_PING_SECONDS"]

    def generate():
        # No stream_with_context: the request context (and its DB session) is gone once the view
        # returns; turn_events opens short app contexts of its own.
        for number, (event, data) in enumerate(
            turn_events(app, deps, turn, ping, registry), start=1
        ):
            yield sse.PING if event == "ping" else sse.frame(number, event, data)

    return sse.response(generate())


@bp.post("/chat")
@accounts.require_role("user")
@bp.arguments(schemas.ChatRequest)
@bp.response(200, schemas.ChatReply)
def answer(body: dict):
    """Ask; one JSON reply (the same pipeline as the stream)"""
    turn, registry = _begin_turn(body)
    app = current_app._get_current_object()
    reply = {
        "chat_id": turn.chat_id,
        "message_id": turn.assistant_message_id,
        "content": "",
        "citations": [],
    }
    for event, data in turn_events(
        app, get_deps(app), turn, app.config["SSE_PING_SECONDS"], registry
    ):
        if event == "token":
            reply["content"] += data["content"]
        elif event == "citation":
            reply["citations"] = data["citations"]
        elif event == "metadata":
            reply.update(data)
        elif event == "error":
            raise ServiceUnavailable(
                data["message"],
                code=data["code"],
                extra={"chat_id": turn.chat_id, "message_id": turn.assistant_message_id},
            )
    reply["status"] = "complete"
    return reply
