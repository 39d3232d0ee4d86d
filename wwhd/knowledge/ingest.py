"""One document end to end: parse → chunk → SQL rows → Qdrant points."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Chunk, Document, Namespace
from ..models.base import utcnow
from ..offload import cpu_bound
from ..validation import strip_bidi
from . import handoff
from .chunking import checksum, chunk_id, chunk_sections
from .files import FileStore
from .gc_pause import collector_paused
from .parsers import ParsedDocument, parse_bytes, parse_text

if TYPE_CHECKING:  # index.py imports qdrant_client: only where vectors are written (wwhd/lazy.py)
    from .index import KnowledgeIndex

log = logging.getLogger(__name__)


class IngestError(ValueError):
    """The document cannot be indexed; the message says why, for the admin."""


class FileTooLarge(IngestError):
    """The upload exceeds the per-file limit."""


@dataclass(frozen=True)
class Created:
    """The outcome of adding a source: the document, and whether it is new or a duplicate."""

    document: Document
    created: bool


@dataclass(frozen=True)
class ParsedText:
    """What add_source needs of a parse done in a child process: its text, kind and title."""

    kind: str
    text: str
    title: str | None
    checksum: str
    sections_file: Path | None = None  # set aside for the document's job (handoff.py)


def parse_upload_in_child(data: bytes, filename: str | None) -> ParsedText:
    """Parse an upload in a child process (wwhd/knowledge/prepare.py --parse): under gevent the
    parse in a thread took the GIL from the loop for ~1 s and left its garbage in the worker's heap.
    Raises ParseError as parse_bytes would."""
    import tempfile

    from . import child

    with tempfile.TemporaryDirectory(prefix="wwhd-upload-") as tmp:
        work = Path(tmp)
        upload = work / "upload"
        cpu_bound(upload.write_bytes, data)  # file I/O releases the GIL: off the loop
        result = child.run(["--parse", str(upload), filename or "", str(work)], work)
        text = cpu_bound((work / "text.txt").read_text, encoding="utf-8")
        sections = handoff.set_aside(work / "sections.json")
    log.info("upload parsed in a child process", extra={"parse_peak_rss_mb": result["peak_rss_mb"]})
    return ParsedText(result["kind"], text, result["title"], result["checksum"], sections)


def hand_off(
    parsed: ParsedDocument | ParsedText,
    data: bytes | None,
    digest: str,
    filename: str | None,
    keep: bool,
) -> None:
    """Keep the upload's sections for its job when it made a document whose original (`data`)
    the job will parse (`keep`), else drop what the parse child set aside (handoff.py)."""
    if keep and data is not None:
        name = cpu_bound(handoff.key, data, filename)
        if isinstance(parsed, ParsedText):
            handoff.keep(parsed.sections_file, name)
        else:
            handoff.save(cpu_bound(handoff.encode, parsed, digest, filename or None), name)
    elif isinstance(parsed, ParsedText):
        handoff.discard(parsed.sections_file)


def find_duplicate(digest: str) -> Document | None:
    return db.session.scalar(select(Document).where(Document.checksum == digest))


def new_document(
    namespace: str,
    title: str,
    parsed: ParsedDocument | ParsedText,
    *,
    source_url: str | None = None,
    youtube_url: str | None = None,
    tags: list[str] | None = None,
    filename: str | None = None,
    size_bytes: int = 0,
    created_by: int | None = None,
    published_at: str | None = None,
    digest: str | None = None,
) -> Document:
    """Add a pending document whose content is the parsed text (flushes; caller commits).
    `digest`: the content's checksum when the caller has it already."""
    content = parsed.text
    doc = Document(
        namespace=namespace,
        title=strip_bidi(title),  # and the filename: what people see (wwhd/validation.py)
        content=content,
        kind=parsed.kind,
        source_url=source_url,
        youtube_url=youtube_url,
        tags=tags or [],
        checksum=digest or checksum(content),
        filename=strip_bidi(filename) if filename else None,
        size_bytes=size_bytes,
        created_by=created_by,
        published_at=published_at,
        status="pending",
    )
    db.session.add(doc)
    db.session.flush()
    return doc


def document_fields(doc: Document) -> dict:
    """The payload fields every point of `doc` shares (what a metadata edit must rewrite)."""
    return {
        "document_id": doc.id,
        "namespace": doc.namespace,
        "title": doc.title,
        "source_url": doc.source_url,
        "youtube_url": doc.youtube_url,
        "source_platform": "youtube"
        if doc.youtube_url
        else ("web" if doc.source_url else "upload"),
        "checksum": doc.checksum,
        "tags": list(doc.tags or []),
    }


def point_payload(doc: Document, row: Chunk) -> dict:
    return row_payload(document_fields(doc), _row_values(row))


def row_payload(fields: dict, row: dict) -> dict:
    """A point's payload from the document's fields and one chunk row's values."""
    return {
        **fields,
        "start_s": row["start_s"],
        "end_s": row["end_s"],
        "page": row["page"],
        "chunk_index": row["index"],
        "text": row["text"],
        "marks": row["marks"] or [],
    }


def build_rows(doc: Document, parsed: ParsedDocument) -> list[Chunk]:
    """Chunk rows for `doc` (not added to the session); ids are deterministic."""
    pieces = cpu_bound(chunk_sections, parsed.sections)
    return [
        Chunk(
            id=chunk_id(doc.id, piece.index, piece.text),
            document_id=doc.id,
            index=piece.index,
            text=piece.text,
            start_s=piece.start_s,
            end_s=piece.end_s,
            page=piece.page,
            marks=[list(mark) for mark in piece.marks] or None,
        )
        for piece in pieces
    ]


def _row_values(row: Chunk) -> dict:
    return {
        "id": row.id,
        "document_id": row.document_id,
        "index": row.index,
        "text": row.text,
        "start_s": row.start_s,
        "end_s": row.end_s,
        "page": row.page,
        "marks": row.marks,
    }


def _parsed(parse: Callable[..., ParsedDocument], *args) -> ParsedDocument:
    """Parse and render the full text (a cached property) in the caller's thread: run through
    cpu_bound, so the ~0.2 s of rendering a 10 MB transcript stays off the gevent loop too."""
    with collector_paused():  # parsed_for (a reindex) comes here without add_source
        parsed = parse(*args)
        _ = parsed.text
    return parsed


def write_vectors(
    index: KnowledgeIndex,
    doc: Document,
    rows: list[Chunk],
    heartbeat: Callable[[], None] | None = None,
) -> None:
    """Make `rows` the document's only points: upsert them (deterministic ids overwrite what a
    crashed run left), then delete its other points. The old points stay searchable until the
    new ones are in. On failure every point of the document is removed (best effort) and the
    error re-raised, so a failure never leaves half a document searchable."""
    from .index import UPSERT_BATCH

    try:
        for start in range(0, len(rows), UPSERT_BATCH):
            batch = rows[start : start + UPSERT_BATCH]
            index.upsert(
                [
                    {"id": row.id, "text": row.text, "payload": point_payload(doc, row)}
                    for row in batch
                ]
            )
            if heartbeat is not None:
                heartbeat()
        wanted = {row.id for row in rows}
        index.delete_points(sorted(index.document_point_ids(doc.id) - wanted))
    except Exception:
        try:
            index.delete_document(doc.id)
        except Exception:  # Qdrant is down; reconcile removes leftovers later
            log.warning("could not remove partial vectors", extra={"document_id": doc.id})
        raise


def index_document(
    doc: Document,
    index: KnowledgeIndex,
    parsed: ParsedDocument | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> int:
    """Re-chunk `doc` and replace its rows and vectors; marks it indexed and commits.

    Vectors are written before the SQL rows commit; if Qdrant fails, the document's vectors are
    removed again so nothing half-indexed is searchable. Raises IngestError when there is
    nothing to index (a document is never indexed with zero chunks).
    """
    parsed = parsed or parse_text(doc.content)
    rows = build_rows(doc, parsed)
    if not rows:
        raise IngestError("The document has no text to index.")
    write_vectors(index, doc, rows, heartbeat)
    db.session.execute(delete(Chunk).where(Chunk.document_id == doc.id))
    # One executemany, not 5,000 ORM objects flushed one by one: the transaction (and, under
    # gevent, the event loop) is held for a fraction of the time. Same rows, same commit.
    db.session.execute(insert(Chunk), [_row_values(row) for row in rows])
    doc.chunk_count = len(rows)
    doc.status = "indexed"
    doc.error = None
    doc.attempts = 0  # the retry budget is per failure streak
    doc.indexed_at = doc.updated_at = utcnow()
    db.session.commit()
    return len(rows)


def parsed_for(doc: Document, store: FileStore | None) -> ParsedDocument:
    """What to chunk: the original upload when its text is still the document's content (it keeps
    PDF pages and exact cue times), else the content as edited."""
    if doc.original_key and store is not None:
        try:
            parsed = cpu_bound(_parsed, parse_bytes, store.get(doc.original_key), doc.filename)
            if checksum(parsed.text) == doc.checksum:
                return parsed
        except Exception:  # original gone or unreadable: the SQL content is the record anyway
            log.warning(
                "original unusable; indexing the stored content", extra={"document_id": doc.id}
            )
    return parse_text(doc.content)


def original_key(digest: str, filename: str | None) -> str:
    """Where an upload's original is kept: by content, so a retried upload rewrites the same object."""
    name = (
        re.sub(r"[^A-Za-z0-9._-]+", "_", PurePath(filename or "upload").name).strip("._")
        or "upload"
    )
    return f"originals/{digest[:2]}/{digest}/{name[:120]}"


def title_from(parsed: ParsedDocument | ParsedText, filename: str | None) -> str:
    if parsed.title:
        return parsed.title
    stem = PurePath(filename or "").stem
    return re.sub(r"[_\s]+", " ", stem).strip() or "Untitled"


def require_namespace(name: str) -> None:
    if not name or db.session.get(Namespace, name) is None:
        known = ", ".join(db.session.scalars(select(Namespace.name).order_by(Namespace.name)))
        raise IngestError(f"Unknown namespace {name!r}; use one of: {known}.")


@collector_paused()  # the parse and the sections handed on (gc_pause.py)
def add_source(
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
    max_bytes: int = 10 * 1024 * 1024,
    in_child: bool = False,
) -> Created:
    """Parse an upload (`data`) or pasted `text`, and add it as a pending document unless the same
    content exists (then that document comes back with created=False). The original upload is
    kept in `store`. Flushes; the caller commits and queues the job. `in_child`: parse an upload
    in a child process (INGEST_IN_CHILD, wwhd/knowledge/child.py).

    Raises FileTooLarge, ParseError (unreadable or mismatched file) or IngestError (namespace).
    """
    require_namespace(namespace)
    if data is not None and len(data) > max_bytes:
        raise FileTooLarge(
            f"{filename or 'The file'} is {len(data) / 1048576:.1f} MB; "
            f"the limit is {max_bytes // 1048576} MB per file."
        )
    if data is not None and in_child:
        parsed = parse_upload_in_child(data, filename)
        digest = parsed.checksum
    else:
        parsed = (
            cpu_bound(_parsed, parse_bytes, data, filename)
            if data is not None
            else cpu_bound(_parsed, parse_text, text or "")
        )
        # In the parse thread too: ~45 ms of pure Python for 8 MB of text.
        digest = cpu_bound(checksum, parsed.text)
    existing = find_duplicate(digest)
    if existing is not None:
        hand_off(parsed, data, digest, filename, keep=False)
        return Created(existing, False)
    try:
        doc = new_document(
            namespace,
            (title or title_from(parsed, filename))[:300],
            parsed,
            source_url=source_url,
            youtube_url=youtube_url,
            tags=tags,
            filename=(PurePath(filename).name[:300] if filename else None),
            size_bytes=len(data) if data is not None else len((text or "").encode()),
            created_by=created_by,
            published_at=published_at,
            digest=digest,
        )
    except IntegrityError:
        # The same content uploaded at the same moment: the unique checksum let the other request
        # win. Nothing else is pending here (PostgreSQL aborted the transaction anyway).
        db.session.rollback()
        hand_off(parsed, data, digest, filename, keep=False)
        existing = find_duplicate(digest)
        if existing is None:
            raise
        return Created(existing, False)
    if data is not None and store is not None:
        doc.original_key = original_key(digest, filename)
        store.put(doc.original_key, data)
    hand_off(parsed, data, digest, filename, keep=store is not None)
    return Created(doc, True)
