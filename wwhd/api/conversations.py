"""Conversations (chat history): list, read, rename, delete — only ever the caller's own chats."""

from __future__ import annotations

from flask import Blueprint, jsonify

from .. import accounts
from ..conversations import get_owned_chat, list_chats, normalize_text
from ..errors import ValidationError
from ..extensions import db
from ..validation import strip_bidi
from . import int_arg, json_body

bp = Blueprint("conversations", __name__)


@bp.get("/chats")
@accounts.require_role("viewer")
def index():
    return jsonify(
        list_chats(
            accounts.current_user(), int_arg("page", 1, 1, 100000), int_arg("per_page", 20, 1, 100)
        )
    )


@bp.get("/chats/<chat_id>")
@accounts.require_role("viewer")
def show(chat_id: str):
    chat = get_owned_chat(accounts.current_user(), chat_id)
    return jsonify({**chat.to_dict(), "messages": [m.to_dict() for m in chat.messages]})


@bp.patch("/chats/<chat_id>")
@accounts.require_role("viewer")
def rename(chat_id: str):
    chat = get_owned_chat(accounts.current_user(), chat_id)
    body = json_body()
    title = body.get("title")
    if not isinstance(title, str) or not normalize_text(title) or len(title) > 200:
        raise ValidationError(
            "Field 'title' must be a non-empty string of at most 200 characters.",
            fields=[{"field": "title", "message": "invalid"}],
        )
    chat.title = strip_bidi(normalize_text(title)) or chat.title
    db.session.commit()
    return jsonify(chat.to_dict())


@bp.delete("/chats/<chat_id>")
@accounts.require_role("viewer")
def delete(chat_id: str):
    chat = get_owned_chat(accounts.current_user(), chat_id)
    db.session.delete(chat)
    db.session.commit()
    return "", 204
