"""Conversations: history, ownership, and the per-turn writes before and after generation."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from . import usage as usage_service
from .errors import NotFound, ValidationError
from .extensions import db
from .models import Chat, Citation, Message, UnansweredQuestion, User
from .models.base import new_uuid, utcnow
from .validation import strip_bidi

CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u2028\u2029\ufeff]")
HISTORY_TURNS = 10


def normalize_text(text: str) -> str:
    """NFC, no control characters or NULs, unified newlines; letters, emoji and accents untouched."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return CONTROL_RE.sub("", text).strip()


def get_owned_chat(user: User, chat_id: str) -> Chat:
    """The chat if `user` owns it; another user's chat is indistinguishable from a missing one (404)."""
    chat = (
        db.session.get(Chat, chat_id) if isinstance(chat_id, str) and len(chat_id) <= 64 else None
    )
    if chat is None or chat.user_id != user.id:
        raise NotFound("Chat not found.")
    return chat


def list_chats(user: User, page: int, per_page: int) -> dict:
    total = db.session.scalar(select(func.count(Chat.id)).where(Chat.user_id == user.id))
    # Count only this user's messages: unfiltered, the subquery grouped every message of every user.
    counts = (
        select(Message.chat_id, func.count(Message.id).label("n"))
        .where(Message.chat_id.in_(select(Chat.id).where(Chat.user_id == user.id)))
        .group_by(Message.chat_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Chat, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.chat_id == Chat.id)
        .where(Chat.user_id == user.id)
        .order_by(Chat.updated_at.desc(), Chat.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return {
        "items": [chat.to_dict(message_count=n) for chat, n in rows],
        "page": page,
        "per_page": per_page,
        "total": total,
    }


# The statements every turn runs, built once: building one cost more than running it (~0.13 ms
# each; statements are immutable and SQLAlchemy reuses them with new parameters). Keys in the
# parameters name the columns an UPDATE sets.
_CHATS, _MESSAGES = Chat.__table__, Message.__table__
_INSERT_CHAT = insert(_CHATS)
_TOUCH_CHAT = update(_CHATS).where(_CHATS.c.id == bindparam("chat_key"))
_LAST_MESSAGES = (
    select(Message)
    .where(Message.chat_id == bindparam("chat_key"))
    .order_by(Message.seq.desc())
    .limit(bindparam("n"))
)
_INSERT_MESSAGES = insert(_MESSAGES)
_SAVE_ANSWER = update(_MESSAGES).where(_MESSAGES.c.id == bindparam("message_key"))


@dataclass(frozen=True)
class Turn:
    user_id: int
    chat_id: str
    user_message_id: str
    assistant_message_id: str
    question: str
    history: list[dict]
    namespace_hint: str | None


def start_turn(user: User, content: str, chat_id: str | None, namespace: str | None) -> Turn:
    """Save the user's message and an empty assistant message before generation (caller commits).

    Two questions sent to one chat at once are both kept, in the order they take the chat's row
    lock: the UPDATE below holds it (PostgreSQL row lock, SQLite write lock) until the caller
    commits, so the next `seq` is read only after the other turn's messages are committed.
    """
    if chat_id:
        chat_id = get_owned_chat(user, chat_id).id
        db.session.execute(_TOUCH_CHAT, {"chat_key": chat_id, "updated_at": utcnow()})
        previous = db.session.scalars(
            _LAST_MESSAGES, {"chat_key": chat_id, "n": HISTORY_TURNS * 2}
        ).all()
    else:  # a new chat has no history to read, and its updated_at is its created_at
        title = strip_bidi(" ".join(content.split()))[:80] or "New chat"
        chat_id = new_uuid()
        db.session.execute(_INSERT_CHAT, {"id": chat_id, "user_id": user.id, "title": title})
        previous = []
    history = [
        {"role": m.role, "content": m.content}
        for m in reversed(previous)
        if m.content and m.status in ("complete", "interrupted")
    ]
    seq = (previous[0].seq if previous else 0) + 1
    # Core INSERTs, not ORM objects: the turn never reads these rows back, and the unit of work's
    # flush cost ~1 ms per turn (bench/profile_turn.py). One executemany for both messages.
    question_id, reply_id, now = new_uuid(), new_uuid(), utcnow()
    common = {"chat_id": chat_id, "error": None, "model": None, "namespaces": [], "meta": {}}
    db.session.execute(
        _INSERT_MESSAGES,
        [
            {
                **common,
                "id": question_id,
                "seq": seq,
                "role": "user",
                "content": content,
                "status": "complete",
                "created_at": now,
                "completed_at": now,
            },
            {
                **common,
                "id": reply_id,
                "seq": seq + 1,
                "role": "assistant",
                "content": "",
                "status": "streaming",
                "created_at": now,
                "completed_at": None,
            },
        ],
    )
    return Turn(user.id, chat_id, question_id, reply_id, content, history, namespace)


def finish_turn(
    turn: Turn,
    content: str,
    status: str,
    final: dict | None,
    error: str | None = None,
    model: str | None = None,
) -> bool:
    """Write the assistant's answer, citations and token usage in one transaction (commits).

    UPDATEs by primary key rather than loading the message and the chat first: two SELECTs fewer
    per turn, and nothing here needs the rows' other columns. False when the message is gone (its
    chat was deleted while the answer streamed): nothing is left to attach the answer to."""
    final = final or {}
    now = utcnow()
    saved = db.session.execute(
        _SAVE_ANSWER,
        {
            "message_key": turn.assistant_message_id,
            "content": content,
            "status": status,
            "error": error,
            "model": model,
            "namespaces": final.get("namespaces") or [],
            "meta": {
                "timings": final.get("timings", {}),
                "route_method": final.get("route_method"),
                "route_confidence": final.get("route_confidence"),
                "safety": final.get("safety", []),
                "llm_calls": final.get("llm_calls", 0),
                "covered": final.get("covered"),
            },
            "completed_at": now,
        },
    ).rowcount
    if not saved:
        db.session.rollback()
        return False
    rows = [
        {
            "message_id": turn.assistant_message_id,
            # The answer's [n] for this source (unused sources are not saved, so n may skip).
            "position": cited.get("position") or number,
            "document_id": cited.get("document_id"),
            "chunk_id": cited.get("chunk_id"),
            "title": cited.get("title", "")[:300],
            "url": cited.get("url", ""),
            "youtube_url": cited.get("youtube_url", ""),
            "timestamp": cited.get("timestamp", ""),
            "namespace": cited.get("namespace", ""),
            "score": float(cited.get("score", 0.0)),
        }
        for number, cited in enumerate(final.get("citations") or [], start=1)
    ]
    if rows:  # one executemany (Core): no ORM objects that nothing reads back
        db.session.execute(insert(Citation.__table__), rows)
    usage_service.record_all(turn.user_id, turn.assistant_message_id, final.get("usage") or [])
    if final and final.get("kb_available") and not final.get("covered") and not final.get("crisis"):
        record_unanswered(turn.question, (final.get("namespaces") or [None])[0])
    db.session.execute(_TOUCH_CHAT, {"chat_key": turn.chat_id, "updated_at": now})
    db.session.commit()
    return True


def record_unanswered(question: str, namespace_guess: str | None) -> None:
    normalized = " ".join(re.findall(r"[a-z0-9']+", question.lower()))[:500]
    if not normalized:
        return
    # One statement (INSERT … ON CONFLICT DO UPDATE, on SQLite and PostgreSQL alike): the same
    # question asked twice at once counts twice instead of failing the second answer's save.
    dialect = db.session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    now = utcnow()
    table = UnansweredQuestion.__table__
    db.session.execute(
        insert(table)
        .values(
            normalized=normalized,
            question=question[:2000],
            namespace_guess=namespace_guess,
            count=1,
            first_seen=now,
            last_seen=now,
        )
        .on_conflict_do_update(
            index_elements=[table.c.normalized],
            set_={"count": table.c.count + 1, "last_seen": now},
        )
    )


def parse_message_body(
    body, max_chars: int, known_namespaces: set[str]
) -> tuple[str, str | None, str | None]:
    """Validate a chat request body → (content, chat_id, namespace). Raises ValidationError."""
    if not isinstance(body, dict):
        raise ValidationError(
            "Request body must be a JSON object like {\"content\": \"your question\"}."
        )
    raw = body.get("content", body.get("message"))
    if raw is None:
        raise ValidationError(
            "Field 'content' is required.", fields=[{"field": "content", "message": "required"}]
        )
    if not isinstance(raw, str):
        raise ValidationError(
            "Field 'content' must be a string.",
            fields=[{"field": "content", "message": "not a string"}],
        )
    content = normalize_text(raw)
    if not content:
        raise ValidationError(
            "Field 'content' must not be empty.", fields=[{"field": "content", "message": "empty"}]
        )
    if len(content) > max_chars:
        raise ValidationError(
            f"Field 'content' is too long ({len(content)} characters; the limit is {max_chars}).",
            fields=[{"field": "content", "message": f"max {max_chars} characters"}],
        )
    chat_id = body.get("chat_id", body.get("session_id"))
    if chat_id is not None and not isinstance(chat_id, str):
        raise ValidationError(
            "Field 'chat_id' must be a string.",
            fields=[{"field": "chat_id", "message": "not a string"}],
        )
    namespace = body.get("namespace")
    if namespace in ("", None):
        namespace = None
    elif not isinstance(namespace, str) or namespace not in known_namespaces:
        raise ValidationError(
            f"Unknown namespace {namespace!r}.",
            fields=[{"field": "namespace", "message": "unknown"}],
        )
    return content, chat_id or None, namespace
