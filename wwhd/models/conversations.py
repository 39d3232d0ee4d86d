"""Chats, messages, citations, token usage, feedback and unanswered questions."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import AUTOINCREMENT, isoformat, new_uuid, utcnow

MESSAGE_STATUSES = ("complete", "streaming", "failed", "interrupted")


class Chat(db.Model):
    __tablename__ = "chats"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200), default="New chat")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    messages: Mapped[list[Message]] = relationship(
        back_populates="chat",
        order_by="Message.seq",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    def to_dict(self, message_count: int | None = None) -> dict:
        data = {
            "id": self.id,
            "chat_id": self.id,
            "title": self.title,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }
        if message_count is not None:
            data["message_count"] = message_count
        return data


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("chat_id", "seq", name="uq_messages_chat_seq"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    chat_id: Mapped[str] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # order within the chat; timestamps can tie
    role: Mapped[str] = mapped_column(String(16))  # user | assistant
    content: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="complete")
    error: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(120))
    namespaces: Mapped[list] = mapped_column(JSON, default=list)
    meta: Mapped[dict] = mapped_column(
        JSON, default=dict
    )  # timings, route confidence, safety flags
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)

    chat: Mapped[Chat] = relationship(back_populates="messages")
    citations: Mapped[list[Citation]] = relationship(
        order_by="Citation.position", cascade="all, delete-orphan", passive_deletes=True
    )

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "chat_id": self.chat_id,
            "role": self.role,
            "content": self.content,
            "status": self.status,
            "error": self.error,
            "model": self.model,
            "namespaces": self.namespaces or [],
            "created_at": isoformat(self.created_at),
            "completed_at": isoformat(self.completed_at),
            "citations": [c.to_dict() for c in self.citations],
        }


class Citation(db.Model):
    __tablename__ = "citations"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)  # the n in [n]
    document_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL"), index=True
    )
    chunk_id: Mapped[str | None] = mapped_column(String(36))
    title: Mapped[str] = mapped_column(String(300), default="")
    url: Mapped[str] = mapped_column(String(1000), default="")
    youtube_url: Mapped[str] = mapped_column(String(1000), default="")
    timestamp: Mapped[str] = mapped_column(String(16), default="")
    namespace: Mapped[str] = mapped_column(String(64), default="")
    score: Mapped[float] = mapped_column(Float, default=0.0)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "position": self.position,
            "title": self.title,
            "url": self.url,
            "youtube_url": self.youtube_url,
            "timestamp": self.timestamp,
            "namespace": self.namespace,
            "document_id": self.document_id,
            "chunk_id": self.chunk_id,
            "score": self.score,
        }


class TokenUsage(db.Model):
    __tablename__ = "token_usage"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    message_id: Mapped[str | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16), default="chat")  # chat | embedding
    model: Mapped[str] = mapped_column(String(120))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Numeric(12, 6), default=0)
    day: Mapped[date] = mapped_column(Date, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Feedback(db.Model):
    __tablename__ = "feedback"
    # One rating per (user, answer) and per (user, answer, citation). NULLs never collide in a
    # unique index, so the answer-level rating (no citation) needs its own partial index.
    __table_args__ = (
        Index(
            "uq_feedback_answer",
            "user_id",
            "message_id",
            unique=True,
            sqlite_where=text("citation_id IS NULL"),
            postgresql_where=text("citation_id IS NULL"),
        ),
        UniqueConstraint("user_id", "message_id", "citation_id", name="uq_feedback_citation"),
        AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    citation_id: Mapped[int | None] = mapped_column(ForeignKey("citations.id", ondelete="CASCADE"))
    rating: Mapped[str] = mapped_column(String(8))  # up | down
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class UnansweredQuestion(db.Model):
    """A question the knowledge base could not answer, grouped by its normalised text."""

    __tablename__ = "unanswered_questions"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    normalized: Mapped[str] = mapped_column(String(500), unique=True)
    question: Mapped[str] = mapped_column(Text)
    namespace_guess: Mapped[str | None] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "question": self.question,
            "namespace_guess": self.namespace_guess,
            "count": self.count,
            "first_seen": isoformat(self.first_seen),
            "last_seen": isoformat(self.last_seen),
        }
