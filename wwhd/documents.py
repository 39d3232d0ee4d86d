"""The documents service: add, de-duplicate, update, delete and reindex knowledge-base documents.

The API (wwhd/api/documents.py) and the CLI (wwhd/cli.py) both go through here, so the rules live
once: a namespace must exist, identical content is one document (a failed duplicate is queued
again), an edit that changes the text re-chunks it, and a deletion removes vectors before rows.

Errors are the domain errors of wwhd/errors.py (NotFound, Conflict, ValidationError, …); errors.py
maps them to HTTP once, the CLI prints their message. Functions here flush; whoever owns the unit
of work (the view or the CLI command) commits, then queues the job with `enqueue`.
"""

from __future__ import annotations

from concurrent import futures
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

from .deps import get_runner
from .errors import Conflict, NotFound, PayloadTooLarge, ServiceUnavailable, ValidationError
from .extensions import db
from .knowledge import ingest
from .knowledge.child import use_child
from .knowledge.chunking import checksum
from .knowledge.errors import IndexUnavailable
from .knowledge.files import FileStore
from .knowledge.jobs import claim, describe_failure, mark_failed
from .knowledge.parsers import ParsedDocument, ParseError, parse_text
from .knowledge.reconcile import reindex as reindex_from_sql
from .models import Document
from .models.base import utcnow

if TYPE_CHECKING:  # index.py imports qdrant_client (wwhd/lazy.py)
    from .knowledge.index import KnowledgeIndex

# The fields an edit may change; anything else in `changes` is a programming error.
EDITABLE = ("namespace", "title", "content", "source_url", "youtube_url", "tags", "published_at")
INDEX_DOWN = "The search index is unavailable; nothing was changed. Try again shortly."


class Duplicate(Conflict):
    """The content is already in the knowledge base as `existing`."""

    def __init__(self, existing: Document):
        super().__init__(
            f"This content is already in the knowledge base as document {existing.id} "
            f"('{existing.title}', {existing.status}).",
            extra={"duplicate_of": existing.to_dict(with_content=False)},
        )
        self.existing = existing


class Busy(Conflict):
    def __init__(self, doc: Document):
        super().__init__(
            f"Document {doc.id} is being indexed right now; try again when it is done."
        )


@dataclass(frozen=True)
class Added:
    """A pending document; `requeued` when it was a failed duplicate queued again."""

    document: Document
    requeued: bool = False


def invalid(field: str, message: str) -> ValidationError:
    return ValidationError(message, fields=[{"field": field, "message": message}])


def parse_error(err: ParseError, filename: str | None = None) -> ValidationError:
    what = f"'{filename}'" if filename else "the content"
    return ValidationError(
        f"Could not read {what}: {err.message}.",
        fields=[
            {"field": "file" if filename else "content", "message": err.message, "code": err.code}
        ],
    )


def require_namespace(name: str | None) -> str:
    """`name` when such a namespace exists, else a 422 on field 'namespace' listing the known ones."""
    try:
        ingest.require_namespace(name or "")
    except ingest.IngestError as err:
        raise invalid("namespace", str(err)) from None
    return name


def get(document_id: int) -> Document:
    # Beyond 64 bits the database driver raises instead of finding nothing.
    doc = db.session.get(Document, document_id) if 0 < document_id < 2**63 else None
    if doc is None:
        raise NotFound(f"Document {document_id} not found.")
    return doc


def is_running(doc: Document) -> bool:
    """A live job holds the document (processing with a fresh heartbeat)."""
    if doc.status != "processing" or doc.heartbeat_at is None:
        return False
    return (utcnow() - doc.heartbeat_at).total_seconds() < current_app.config["JOB_STALE_SECONDS"]


def add(
    namespace: str,
    *,
    data: bytes | None = None,
    text: str | None = None,
    filename: str | None = None,
    title: str | None = None,
    source_url: str | None = None,
    youtube_url: str | None = None,
    tags: list[str] | None = None,
    published_at: str | None = None,
    created_by: int | None = None,
    store: FileStore | None = None,
    max_bytes: int | None = None,
) -> Added:
    """Add an upload (`data`) or pasted `text` as a pending document (flushes; the caller commits,
    then calls `enqueue`). Raises Duplicate when the same content exists, unless that document
    failed: then it is reset to pending and returned with requeued=True."""
    require_namespace(namespace)
    if max_bytes is None:
        max_bytes = current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024
    try:
        result = ingest.add_source(
            namespace,
            data=data,
            text=text,
            filename=filename,
            title=title,
            source_url=source_url,
            youtube_url=youtube_url,
            tags=tags,
            published_at=published_at,
            created_by=created_by,
            store=store,
            max_bytes=max_bytes,
            in_child=use_child(current_app.config["INGEST_IN_CHILD"]),
        )
    except ingest.FileTooLarge as err:
        raise PayloadTooLarge(str(err)) from None
    except ParseError as err:
        raise parse_error(err, filename if data is not None else None) from None
    except ingest.IngestError as err:
        raise ValidationError(str(err)) from None
    doc = result.document
    if result.created:
        return Added(doc)
    if doc.status != "failed":
        raise Duplicate(doc)
    doc.status, doc.error, doc.attempts = "pending", None, 0
    db.session.flush()
    return Added(doc, requeued=True)


def enqueue(document_id: int, app: Flask | None = None) -> None:
    """Hand a committed pending document to the job runner."""
    get_runner(app or current_app._get_current_object()).submit(document_id)


def update(doc: Document, changes: dict, index: KnowledgeIndex) -> Document:
    """Apply `changes` (only the fields to change; a field not in it keeps its value).

    New text is re-chunked and its vectors replaced before returning (that path commits the edit
    first, so it is kept even when indexing fails: then ServiceUnavailable carries the document).
    A metadata-only change of an indexed document rewrites the payload of its points. Flushes."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    changes = dict(changes)
    if "namespace" in changes:
        require_namespace(changes["namespace"])
    parsed = None
    if "content" in changes:
        content = changes.pop("content")
        if content != doc.content:
            try:
                parsed = parse_text(content)
            except ParseError as err:
                raise parse_error(err) from None
            digest = checksum(parsed.text)
            other = ingest.find_duplicate(digest)
            if other is not None and other.id != doc.id:
                raise Duplicate(other)
            changes.update(content=parsed.text, checksum=digest, kind=parsed.kind)
    changes = {key: value for key, value in changes.items() if getattr(doc, key) != value}
    if "content" not in changes:
        parsed = None  # same text, differently typed: nothing to re-chunk
    if not changes:
        return doc
    if is_running(doc):
        raise Busy(doc)
    if parsed is not None:
        return _replace_content(doc, changes, parsed, index)
    for key, value in changes.items():
        setattr(doc, key, value)
    if doc.status == "indexed":
        try:
            index.set_document_payload(doc.id, ingest.document_fields(doc))
        except IndexUnavailable:
            db.session.rollback()
            raise ServiceUnavailable(INDEX_DOWN) from None
    doc.updated_at = utcnow()
    db.session.flush()
    return doc


def _replace_content(
    doc: Document, changes: dict, parsed: ParsedDocument, index: KnowledgeIndex
) -> Document:
    document_id = doc.id
    if not claim(
        document_id, current_app.config["JOB_STALE_SECONDS"], ("pending", "indexed", "failed")
    ):
        raise Busy(doc)
    doc = get(document_id)
    for key, value in changes.items():
        setattr(doc, key, value)
    doc.updated_at = utcnow()
    # The claim above is its own committed step; so is the edit, kept even if indexing fails.
    db.session.commit()
    try:
        ingest.index_document(doc, index, parsed)
    except Exception as exc:
        message = describe_failure(exc)
        mark_failed(current_app._get_current_object(), document_id, message, index)
        raise ServiceUnavailable(
            f"The edit was saved but could not be indexed: {message}",
            extra={"document": get(document_id).to_dict()},
        ) from None
    return doc


def delete(doc: Document) -> tuple[int, str | None]:
    """Rows first (the record); the caller commits, then `forget` removes the points and the
    original in a runner job: a 20k-chunk document would otherwise hold the request for minutes
    in embedded Qdrant. Points left by a crash are removed by the index's self-healing check,
    since no document has their checksum any more. Flushes."""
    document_id, key = doc.id, doc.original_key
    db.session.delete(doc)
    db.session.flush()
    return document_id, key


def forget(document_id: int, key: str | None, wait_s: float = 0.5) -> None:
    """After the commit: delete the document's points and original in the background, waiting a
    little so small documents (and a Qdrant server) are done when the answer goes out."""
    done = get_runner(current_app._get_current_object()).delete_document(document_id, key)
    futures.wait([done], timeout=wait_s)


def forget_original(key: str | None, store: FileStore | None, document_id: int) -> None:
    """Remove a deleted document's original upload (after the commit; a stray one is harmless)."""
    if not key or store is None:
        return
    try:
        store.delete(key)
    except Exception:
        current_app.logger.warning("could not delete original", extra={"document_id": document_id})


def mark_for_reindex(doc: Document) -> Document:
    """Reset a document to pending so the runner re-chunks it (flushes; caller commits, enqueues)."""
    if is_running(doc):
        raise Busy(doc)
    doc.status, doc.error, doc.attempts = "pending", None, 0
    db.session.flush()
    return doc


def reindex_namespace(name: str | None, index: KnowledgeIndex) -> dict:
    """Rebuild the points of one namespace (or all, with None) from the SQL chunk rows. Documents
    without rows come back in counts['requeued'] for the caller to enqueue or process."""
    try:
        return reindex_from_sql(index, name)
    except IndexUnavailable:
        raise ServiceUnavailable(INDEX_DOWN) from None
