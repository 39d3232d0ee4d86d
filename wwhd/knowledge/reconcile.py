"""SQL ↔ Qdrant drift: report it, repair it, and rebuild the index from the SQL record."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy import select

from ..extensions import db
from ..models import Chunk, Document
from .ingest import point_payload, write_vectors

if TYPE_CHECKING:  # index.py imports qdrant_client (wwhd/lazy.py)
    from .index import KnowledgeIndex

log = logging.getLogger(__name__)

IN_FLIGHT = ("pending", "processing")  # a job owns these; reconcile leaves their points alone


@dataclass
class Drift:
    """What differs between SQL and Qdrant. Point ids are chunk ids."""

    orphan_points: list[str] = field(default_factory=list)  # no chunk row of an indexed document
    missing_points: list[str] = field(
        default_factory=list
    )  # chunk row of an indexed document, no point
    stale_points: list[str] = field(default_factory=list)  # payload differs from what SQL says
    old_collections: list[str] = field(
        default_factory=list
    )  # left behind by an embedding-model change
    points: int = 0
    chunks: int = 0

    @property
    def total(self) -> int:
        return (
            len(self.orphan_points)
            + len(self.missing_points)
            + len(self.stale_points)
            + len(self.old_collections)
        )

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
    from .index import PAYLOAD_FIELDS

    flat = {key: _normalise(payload.get(key)) for key in PAYLOAD_FIELDS}
    return hashlib.sha1(json.dumps(flat, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _indexed_rows(namespace: str | None = None):
    query = (
        select(Chunk, Document)
        .join(Document, Chunk.document_id == Document.id)
        .where(Document.status == "indexed")
        .order_by(Chunk.document_id, Chunk.index)
    )
    if namespace:
        query = query.where(Document.namespace == namespace)
    return db.session.execute(query.execution_options(yield_per=1000))


def report(index: KnowledgeIndex) -> Drift:
    """Compare every point with the chunk rows of indexed documents (read-only)."""
    expected = {chunk.id: _fingerprint(point_payload(doc, chunk)) for chunk, doc in _indexed_rows()}
    in_flight = set(db.session.scalars(select(Document.id).where(Document.status.in_(IN_FLIGHT))))
    drift = Drift(chunks=len(expected), old_collections=index.other_collections())
    seen: set[str] = set()
    for point_id, payload in index.iter_points(with_payload=True):
        drift.points += 1
        if point_id not in expected:
            if payload.get("document_id") not in in_flight:
                drift.orphan_points.append(point_id)
            continue
        seen.add(point_id)
        if _fingerprint(payload) != expected[point_id]:
            drift.stale_points.append(point_id)
    drift.missing_points = sorted(set(expected) - seen)
    return drift


def repair(index: KnowledgeIndex) -> Drift:
    """Fix what report() finds: delete orphans, rewrite missing and stale points from SQL, drop
    collections of old embedding models. Returns the drift that was found."""
    from .index import UPSERT_BATCH

    drift = report(index)
    index.delete_points(drift.orphan_points)
    rewrite = set(drift.missing_points) | set(drift.stale_points)
    if rewrite:
        batch: list[dict] = []
        for chunk, doc in _indexed_rows():
            if chunk.id in rewrite:
                batch.append(
                    {"id": chunk.id, "text": chunk.text, "payload": point_payload(doc, chunk)}
                )
                if len(batch) >= UPSERT_BATCH:
                    index.upsert(batch)
                    batch = []
        if batch:
            index.upsert(batch)
    for name in drift.old_collections:
        index.drop_collection(name)
    if drift.total:
        log.warning(
            "index drift repaired",
            extra={k: len(v) for k, v in asdict(drift).items() if isinstance(v, list)},
        )
    return drift


def reindex(index: KnowledgeIndex, namespace: str | None = None) -> dict:
    """Rebuild the points of every indexed document (of one namespace, or all) from its chunk rows;
    for all, also delete points SQL does not know. Indexed documents without chunk rows are set
    back to `pending` and their ids returned in "requeued" for the caller to run. Commits."""
    docs = list(
        db.session.scalars(
            select(Document)
            .where(Document.status == "indexed")
            .where(*([Document.namespace == namespace] if namespace else []))
            .order_by(Document.id)
        )
    )
    counts = {
        "namespace": namespace,
        "documents": 0,
        "chunks": 0,
        "orphans_deleted": 0,
        "requeued": [],
    }
    for doc in docs:
        rows = list(
            db.session.scalars(
                select(Chunk).where(Chunk.document_id == doc.id).order_by(Chunk.index)
            )
        )
        if not rows:
            doc.status, doc.chunk_count = "pending", 0
            counts["requeued"].append(doc.id)
            continue
        write_vectors(index, doc, rows)
        counts["documents"] += 1
        counts["chunks"] += len(rows)
    db.session.commit()
    if namespace is None:
        orphans = report(index).orphan_points
        index.delete_points(orphans)
        counts["orphans_deleted"] = len(orphans)
    return counts


def rebuild_if_empty(app: Flask) -> bool:
    """After a model change or a Qdrant volume loss the index is empty while SQL is not: rebuild it.
    Needs an app context; returns True when it rebuilt."""
    from ..deps import get_deps

    index = get_deps(app).index
    if index.count() > 0:
        return False
    if (
        db.session.scalar(
            select(Chunk.id).join(Document).where(Document.status == "indexed").limit(1)
        )
        is None
    ):
        return False
    log.warning("index is empty but SQL has chunks: rebuilding from SQL")
    reindex(index)
    return True
