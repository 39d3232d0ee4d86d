"""Conversations (chat history): list, read, rename, delete — only ever the caller's own chats."""

from __future__ import annotations

from .. import accounts
from ..conversations import get_owned_chat, list_chats, normalize_text
from ..extensions import db
from ..validation import strip_bidi
from . import Blueprint, schemas

bp = Blueprint("conversations", __name__, description="Your chat history")


@bp.get("/chats")
@accounts.require_role("viewer")
@bp.arguments(schemas.Paging, location="query")
@bp.response(200, schemas.ChatPage)
def index(query: dict):
    """Your chats, newest first"""
    return list_chats(accounts.current_user(), query["page"], query["per_page"])


@bp.get("/chats/<chat_id>")
@accounts.require_role("viewer")
@bp.response(200, schemas.ChatWithMessages)
def show(chat_id: str):
    """One chat with its messages"""
    chat = get_owned_chat(accounts.current_user(), chat_id)
    return {**chat.to_dict(), "messages": [m.to_dict() for m in chat.messages]}


@bp.patch("/chats/<chat_id>")
@accounts.require_role("viewer")
@bp.arguments(schemas.Rename)
@bp.response(200, schemas.Chat)
def rename(body: dict, chat_id: str):
    """Rename"""
    chat = get_owned_chat(accounts.current_user(), chat_id)
    chat.title = strip_bidi(normalize_text(body["title"])) or chat.title
    db.session.commit()
    return chat.to_dict()


@bp.delete("/chats/<chat_id>")
@accounts.require_role("viewer")
@bp.response(204)
def delete(chat_id: str):
    """Delete with its messages"""
    chat = get_owned_chat(accounts.current_user(), chat_id)
    db.session.delete(chat)
    db.session.commit()
