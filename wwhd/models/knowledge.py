"""Namespaces, documents and chunks: the knowledge base's system of record."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import AUTOINCREMENT, isoformat, utcnow

DOCUMENT_STATUSES = ("pending", "processing", "indexed", "failed")


class Namespace(db.Model):
    __tablename__ = "namespaces"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    keywords: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Document(db.Model):
    __tablename__ = "documents"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(ForeignKey("namespaces.name"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    content: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(32), default="text")
    source_url: Mapped[str | None] = mapped_column(String(1000))
    youtube_url: Mapped[str | None] = mapped_column(String(1000))
    published_at: Mapped[str | None] = mapped_column(String(32))
    tags: Mapped[list] = mapped_column(JSON, default=list)
    checksum: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    error: Mapped[str | None] = mapped_column(Text)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    filename: Mapped[str | None] = mapped_column(String(300))
    original_key: Mapped[str | None] = mapped_column(
        String(500)
    )  # S3 key or local path of the upload
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    indexed_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(
        DateTime
    )  # a job's liveness while processing
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    chunks: Mapped[list[Chunk]] = relationship(
        order_by="Chunk.index", cascade="all, delete-orphan", passive_deletes=True
    )

    def to_dict(self, with_content: bool = True) -> dict:
        data = {
            "id": self.id,
            "namespace": self.namespace,
            "title": self.title,
            "kind": self.kind,
            "source_url": self.source_url,
            "youtube_url": self.youtube_url,
            "published_at": self.published_at,
            "tags": self.tags or [],
            "status": self.status,
            "chunk_count": self.chunk_count,
            "checksum": self.checksum,
            "filename": self.filename,
            "size_bytes": self.size_bytes,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
            "indexed_at": isoformat(self.indexed_at),
            "error": self.error,
        }
        if with_content:
            data["content"] = self.content or ""
        return data


class Chunk(db.Model):
    __tablename__ = "chunks"
    __table_args__ = (UniqueConstraint("document_id", "index", name="uq_chunks_document_index"),)

    id: Mapped[str] = mapped_column(
        String(36), primary_key=True
    )  # deterministic uuid5, also the Qdrant point id
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    index: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    start_s: Mapped[float | None] = mapped_column(Float)
    end_s: Mapped[float | None] = mapped_column(Float)
    page: Mapped[int | None] = mapped_column(Integer)
    marks: Mapped[list | None] = mapped_column(
        JSON
    )  # [[offset, start second], ...] of its timed lines

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "document_id": self.document_id,
            "index": self.index,
            "text": self.text,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "page": self.page,
            "marks": self.marks,
        }
