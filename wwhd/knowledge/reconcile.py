"""SQL ↔ Qdrant drift: report it, repair it, rebuild the index from SQL, and heal it cheaply.

Everything here walks keyset pages (`chunks.id > last ORDER BY chunks.id LIMIT n`) of chunk rows
joined only to the few document columns a point's payload carries, never `documents.content`, so
memory and database temp space per step are one page whatever the size of the knowledge base.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import exists, func, select, update

from ..extensions import db
from ..models import Chunk, Document
from .ingest import point_payload

if TYPE_CHECKING:  # index.py imports qdrant_client (wwhd/lazy.py)
    from .index import KnowledgeIndex

log = logging.getLogger(__name__)

IN_FLIGHT = ("pending", "processing")  # a job owns these; reconcile leaves their points alone
PAGE = 1000  # chunk rows (or points) per step
SAMPLE = 100  # ids kept per kind of drift, for the report; the counts are complete

_CHUNK_COLUMNS = (
    Chunk.id,
    Chunk.document_id,
    Chunk.index,
    Chunk.text,
    Chunk.start_s,
    Chunk.end_s,
    Chunk.page,
    Chunk.marks,
)
# What point_payload reads from a document besides its id: everything but its content.
_DOCUMENT_COLUMNS = (
    Document.namespace,
    Document.title,
    Document.source_url,
    Document.youtube_url,
    Document.checksum,
    Document.tags,
)


_SAMPLES = {"orphans": "orphan_points", "missing": "missing_points", "stale": "stale_points"}


@dataclass
class Drift:
    """What differs between SQL and Qdrant. Point ids are chunk ids; the id lists are samples
    (at most SAMPLE each), the counts are complete."""

    orphan_points: list[str] = field(default_factory=list)  # no chunk row of an indexed document
    missing_points: list[str] = field(default_factory=list)  # chunk row, no point
    stale_points: list[str] = field(default_factory=list)  # payload differs from what SQL says
    old_collections: list[str] = field(default_factory=list)  # of an earlier embedding model
    orphans: int = 0
    missing: int = 0
    stale: int = 0
    points: int = 0
    chunks: int = 0

    def add(self, kind: str, point_id: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        ids = getattr(self, _SAMPLES[kind])
        if len(ids) < SAMPLE:
            ids.append(point_id)

    @property
    def total(self) -> int:
        return self.orphans + self.missing + self.stale + len(self.old_collections)

    def to_dict(self) -> dict:
        return {**asdict(self), "total": self.total}


def _normalise(value):
    # JSON stores 12 and 12.0 alike; compare numbers as floats so a round trip is not "drift".
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _fingerprint(payload: dict) -> str:
    from .index import PAYLOAD_FIELDS  # lazy: qdrant_client (wwhd/lazy.py)

    flat = {key: _normalise(payload.get(key)) for key in PAYLOAD_FIELDS}
    return hashlib.sha1(json.dumps(flat, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _point(row, doc) -> dict:
    """The point a chunk row of `doc` (its payload columns) should be: {"id", "text", "payload"}."""
    return {"id": row.id, "text": row.text, "payload": point_payload(doc, row)}


def _with_documents(rows, *document_where) -> list[tuple]:
    """(chunk row, document columns) for the rows whose document is indexed (and matches
    `document_where`): one lookup of the page's few documents, never their content."""
    ids = {row.document_id for row in rows}
    docs = {
        doc.id: doc
        for doc in db.session.execute(
            select(Document.id, *_DOCUMENT_COLUMNS).where(
                Document.id.in_(ids), Document.status == "indexed", *document_where
            )
        )
    }
    return [(row, docs[row.document_id]) for row in rows if row.document_id in docs]


def chunk_pages(*document_where, page: int = PAGE) -> Iterator[list[tuple]]:
    """Chunk rows of indexed documents as pages of (chunk row, document payload columns).

    Keyset by chunk id on the chunks table alone, so the database walks its primary key: no
    sort, no temp B-tree (joined to documents, SQLite sorted every matching row per page).
    `document_where` narrows the documents (namespace)."""
    last = ""
    while True:
        rows = db.session.execute(
            select(*_CHUNK_COLUMNS).where(Chunk.id > last).order_by(Chunk.id).limit(page)
        ).all()
        if not rows:
            return
        pairs = _with_documents(rows, *document_where)
        if pairs:
            yield pairs
        if len(rows) < page:
            return
        last = rows[-1].id


def document_pages(document_id: int, page: int = PAGE) -> Iterator[list[tuple]]:
    """One indexed document's chunk rows in pages, keyset on its (document_id, index) key."""
    last = -1
    while True:
        rows = db.session.execute(
            select(*_CHUNK_COLUMNS)
            .where(Chunk.document_id == document_id, Chunk.index > last)
            .order_by(Chunk.index)
            .limit(page)
        ).all()
        if not rows:
            return
        pairs = _with_documents(rows)
        if not pairs:
            return
        yield pairs
        if len(rows) < page:
            return
        last = rows[-1].index


def _document_ids(values) -> set[int]:
    return {v for v in values if isinstance(v, int) and not isinstance(v, bool)}


def _unknown_points(points: list[tuple[str, dict]]) -> list[str]:
    """The ids among one page of points that no chunk row of an indexed document has and that
    belong to no in-flight document."""
    ids = [point_id for point_id, _ in points]
    known = set(
        db.session.scalars(
            select(Chunk.id)
            .join(Document, Chunk.document_id == Document.id)
            .where(Chunk.id.in_(ids), Document.status == "indexed")
        )
    )
    unknown = [(point_id, payload) for point_id, payload in points if point_id not in known]
    if not unknown:
        return []
    owners = _document_ids(payload.get("document_id") for _, payload in unknown)
    in_flight = set(
        db.session.scalars(
            select(Document.id).where(Document.id.in_(owners), Document.status.in_(IN_FLIGHT))
        )
        if owners
        else []
    )
    return [pid for pid, payload in unknown if payload.get("document_id") not in in_flight]


def _scan(index: KnowledgeIndex, fix: bool, page: int) -> Drift:
    drift = Drift(old_collections=index.other_collections())
    for pairs in chunk_pages(page=page):
        drift.chunks += len(pairs)
        wanted = {row.id: _point(row, doc) for row, doc in pairs}
        found = index.retrieve_payloads(list(wanted))
        rewrite = []
        for point_id, point in wanted.items():
            if point_id not in found:
                drift.add("missing", point_id)
            elif _fingerprint(found[point_id]) != _fingerprint(point["payload"]):
                drift.add("stale", point_id)
            else:
                continue
            rewrite.append(point)
        if fix and rewrite:
            index.upsert(rewrite)
    for points in index.scroll_pages(page, with_payload=["document_id"]):
        drift.points += len(points)
        orphans = _unknown_points(points)
        for point_id in orphans:
            drift.add("orphans", point_id)
        if fix:
            index.delete_points(orphans)
    if fix:
        for name in drift.old_collections:
            index.drop_collection(name)
    return drift


def report(index: KnowledgeIndex, page: int = PAGE) -> Drift:
    """Compare every point with the chunk rows of indexed documents (read-only)."""
    return _scan(index, False, page)


def repair(index: KnowledgeIndex, page: int = PAGE) -> Drift:
    """Fix what report() finds, a page at a time: rewrite missing and stale points from SQL,
    delete orphans, drop collections of old embedding models. Returns the drift that was found."""
    drift = _scan(index, True, page)
    if drift.total:
        log.warning(
            "index drift repaired",
            extra={
                "orphans": drift.orphans,
                "missing": drift.missing,
                "stale": drift.stale,
                "old_collections": len(drift.old_collections),
            },
        )
    return drift


def delete_unknown_points(
    index: KnowledgeIndex, namespace: str | None = None, page: int = PAGE
) -> int:
    """Delete points (of one namespace, or all) that no chunk row of an indexed document has."""
    deleted = 0
    where = {"namespace": namespace} if namespace else None
    for points in index.scroll_pages(page, with_payload=["document_id"], where=where):
        orphans = _unknown_points(points)
        index.delete_points(orphans)
        deleted += len(orphans)
    return deleted


def reindex(index: KnowledgeIndex, namespace: str | None = None, page: int = PAGE) -> dict:
    """Rewrite the points of every indexed document (of one namespace, or all) from its chunk
    rows, then delete the points there SQL does not know. Indexed documents without chunk rows
    are set back to `pending` and their ids returned in "requeued" for the caller to run. Commits."""
    in_namespace = [Document.namespace == namespace] if namespace else []
    has_chunks = exists().where(Chunk.document_id == Document.id)
    requeued = list(
        db.session.scalars(
            select(Document.id)
            .where(Document.status == "indexed", ~has_chunks, *in_namespace)
            .order_by(Document.id)
        )
    )
    if requeued:
        db.session.execute(
            update(Document)
            .where(Document.id.in_(requeued))
            .values(status="pending", chunk_count=0)
            .execution_options(synchronize_session=False)
        )
    counts = {
        "namespace": namespace,
        "documents": db.session.scalar(
            select(func.count(Document.id)).where(Document.status == "indexed", *in_namespace)
        ),
        "chunks": 0,
        "orphans_deleted": 0,
        "requeued": requeued,
    }
    db.session.commit()
    for pairs in chunk_pages(*in_namespace, page=page):
        index.upsert([_point(row, doc) for row, doc in pairs])
        counts["chunks"] += len(pairs)
    db.session.commit()  # ends the read transaction; nothing is written to SQL here
    counts["orphans_deleted"] = delete_unknown_points(index, namespace, page)
    return counts


# -- the cheap check the api runs at start-up and periodically ---------------------------------
@dataclass
class Health:
    """What the cheap check found: documents whose points differ in count or checksum from SQL,
    and checksums in Qdrant that no indexed or in-flight document has."""

    behind: list[int] = field(default_factory=list)
    unknown_checksums: list[str] = field(default_factory=list)
    documents: int = 0
    points_written: int = 0
    points_deleted: int = 0

    @property
    def drifted(self) -> bool:
        return bool(self.behind or self.unknown_checksums)


def _sql_counts() -> tuple[dict[str, tuple[int, int]], set[str]]:
    """{checksum: (document id, chunk rows)} of indexed documents, and in-flight checksums."""
    rows = db.session.execute(
        select(Document.checksum, Document.id, func.count(Chunk.id))
        .join(Chunk, Chunk.document_id == Document.id)
        .where(Document.status == "indexed")
        .group_by(Document.id, Document.checksum)
    ).all()
    in_flight = set(
        db.session.scalars(select(Document.checksum).where(Document.status.in_(IN_FLIGHT)))
    )
    return {digest: (document_id, n) for digest, document_id, n in rows}, in_flight


def check(index: KnowledgeIndex) -> Health:
    """Compare points per document checksum (one Qdrant facet) with chunk rows per indexed
    document (one grouped SQL query): O(documents), not O(chunks). Read-only."""
    expected, in_flight = _sql_counts()
    actual = index.checksum_counts(limit=2 * len(expected) + len(in_flight) + 1000)
    health = Health(documents=len(expected))
    health.behind = sorted(
        document_id for digest, (document_id, n) in expected.items() if actual.get(digest, 0) != n
    )
    health.unknown_checksums = sorted(
        digest for digest in actual if digest not in expected and digest not in in_flight
    )
    return health


def rewrite_document(index: KnowledgeIndex, document_id: int, page: int = PAGE) -> tuple[int, int]:
    """Make the document's points exactly its chunk rows, a page at a time.
    Returns (points written, points deleted)."""
    wanted: set[str] = set()
    for pairs in document_pages(document_id, page=page):
        index.upsert([_point(row, doc) for row, doc in pairs])
        wanted.update(row.id for row, _ in pairs)
    extra = sorted(index.document_point_ids(document_id) - wanted)
    index.delete_points(extra)
    return len(wanted), len(extra)


def heal(index: KnowledgeIndex) -> Health:
    """check(), then rewrite the documents Qdrant is behind on and delete the points of checksums
    SQL does not know (re-checked just before, so an upload that landed meanwhile stays)."""
    health = check(index)
    if not health.drifted:
        return health
    log.warning(
        "index behind SQL: repairing in the background",
        extra={
            "documents_behind": len(health.behind),
            "unknown_checksums": len(health.unknown_checksums),
        },
    )
    for document_id in health.behind:
        written, deleted = rewrite_document(index, document_id)
        health.points_written += written
        health.points_deleted += deleted
    if health.unknown_checksums:
        still_unknown = set(health.unknown_checksums) - set(
            db.session.scalars(
                select(Document.checksum).where(
                    Document.checksum.in_(health.unknown_checksums), Document.status != "failed"
                )
            )
        )
        for digest in sorted(still_unknown):
            for points in index.scroll_pages(PAGE, where={"checksum": digest}):
                index.delete_points([point_id for point_id, _ in points])
                health.points_deleted += len(points)
    db.session.commit()  # ends the read transaction
    log.warning(
        "index repaired from SQL",
        extra={
            "documents_rewritten": len(health.behind),
            "points_written": health.points_written,
            "points_deleted": health.points_deleted,
        },
    )
    return health
