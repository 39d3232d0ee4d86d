"""One document end to end: parse → chunk → SQL rows → Qdrant points."""
from __future__ import annotations

import logging

from sqlalchemy import delete, select

from ..extensions import db
from ..models import Chunk, Document
from ..models.base import utcnow
from .chunking import checksum, chunk_id, chunk_sections
from .index import KnowledgeIndex
from .parsers import ParsedDocument, parse_text

log = logging.getLogger(__name__)


class IngestError(ValueError):
    """The document cannot be indexed; the message says why, for the admin."""


def find_duplicate(digest: str) -> Document | None:
    return db.session.scalar(select(Document).where(Document.checksum == digest))


def new_document(namespace: str, title: str, parsed: ParsedDocument, *, source_url: str | None = None,
                 youtube_url: str | None = None, tags: list[str] | None = None, filename: str | None = None,
                 size_bytes: int = 0, created_by: int | None = None, published_at: str | None = None) -> Document:
    """Add a pending document whose content is the parsed text (flushes; caller commits)."""
    content = parsed.text
    doc = Document(namespace=namespace, title=title, content=content, kind=parsed.kind, source_url=source_url,
                   youtube_url=youtube_url, tags=tags or [], checksum=checksum(content), filename=filename,
                   size_bytes=size_bytes, created_by=created_by, published_at=published_at, status="pending")
    db.session.add(doc)
    db.session.flush()
    return doc


def point_payload(doc: Document, row: Chunk) -> dict:
    return {"document_id": doc.id, "namespace": doc.namespace, "title": doc.title, "source_url": doc.source_url,
            "youtube_url": doc.youtube_url, "source_platform": "youtube" if doc.youtube_url else (
                "web" if doc.source_url else "upload"),
            "start_s": row.start_s, "end_s": row.end_s, "page": row.page, "chunk_index": row.index,
            "text": row.text, "checksum": doc.checksum, "tags": doc.tags or []}


def index_document(doc: Document, index: KnowledgeIndex, parsed: ParsedDocument | None = None) -> int:
    """Re-chunk `doc` and replace its rows and vectors; marks it indexed and commits.

    Vectors are written before the SQL rows commit; if Qdrant fails, the document's vectors are
    removed again so nothing half-indexed is searchable.
    """
    parsed = parsed or parse_text(doc.content)
    pieces = chunk_sections(parsed.sections)
    if not pieces:
        raise IngestError("The document has no text to index.")
    rows = [Chunk(id=chunk_id(doc.id, piece.index, piece.text), document_id=doc.id, index=piece.index,
                  text=piece.text, start_s=piece.start_s, end_s=piece.end_s, page=piece.page) for piece in pieces]
    try:
        index.delete_document(doc.id)
        index.upsert([{"id": row.id, "text": row.text, "payload": point_payload(doc, row)} for row in rows])
    except Exception:
        try:
            index.delete_document(doc.id)
        except Exception:  # Qdrant is down; reconcile removes leftovers later
            log.warning("could not remove partial vectors", extra={"document_id": doc.id})
        raise
    db.session.execute(delete(Chunk).where(Chunk.document_id == doc.id))
    db.session.add_all(rows)
    doc.chunk_count = len(rows)
    doc.status = "indexed"
    doc.error = None
    doc.indexed_at = doc.updated_at = utcnow()
    db.session.commit()
    return len(rows)
