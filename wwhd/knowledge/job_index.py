"""An ingestion job's indexing: prepare the chunks (prepare.py, in a child process under gevent),
then stream them into Qdrant and SQL in small batches, yielding between batches.

Every step that runs in the serving worker is bounded: one batch of 32 points per Qdrant write,
ROW_BATCH chunk rows per SQL statement, a yield after each, so /health and open chat streams get
the loop every few tens of milliseconds however large the document is.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import delete, insert, update

from ..extensions import db
from ..models import Chunk, Document
from ..models.base import utcnow
from ..offload import cpu_bound, pause
from . import child, handoff
from .files import FileStore
from .gc_pause import collector_paused
from .ingest import IngestError, document_fields, row_payload
from .prepare import prepare

if TYPE_CHECKING:  # index.py imports qdrant_client (wwhd/lazy.py)
    from .index import KnowledgeIndex

log = logging.getLogger(__name__)

ROW_BATCH = 250  # chunk rows per INSERT (~8 ms of SQLite work for 1,500-character chunks)


def _spec(doc: Document, store: FileStore | None, index: KnowledgeIndex, work: Path) -> dict:
    content = work / "content.txt"
    # File writes in a real thread under gevent: 10 MB on a busy disk held the loop ~0.3 s.
    cpu_bound(content.write_text, doc.content or "", encoding="utf-8")
    spec = {
        "document_id": doc.id,
        "content_path": str(content),
        "original_path": None,
        "filename": doc.filename,
        "checksum": doc.checksum,
        "dense": _local_dense(index),
    }
    if doc.original_key and store is not None:
        try:
            original = work / "original"
            data = store.get(doc.original_key)
            cpu_bound(original.write_bytes, data)
            spec["original_path"] = str(original)
            handed = handoff.path_for(cpu_bound(handoff.key, data, doc.filename))
            if handed is not None and handed.exists():
                spec["handoff_path"] = str(handed)  # the upload's parse of these bytes
        except Exception:  # original gone or unreadable: the SQL content is the record anyway
            log.warning(
                "original unusable; indexing the stored content", extra={"document_id": doc.id}
            )
    return spec


def _local_dense(index: KnowledgeIndex) -> bool:
    """Whether the dense vectors are the packaged local model's (computed in prepare); a remote
    embedder's are network I/O and are asked for in the worker, a batch at a time."""
    if index.embedder is None:
        return False
    from ..providers.local_embed import LocalEmbedder

    return isinstance(index.embedder, LocalEmbedder)


def run_prepare(spec: dict, work: Path, in_child: bool) -> dict:
    """prepare() in a child process (gevent's subprocess waits cooperatively) or in-process.
    Raises ParseError/IngestError as prepare() would, PrepareFailed when the child crashed."""
    out = work / "out"
    out.mkdir()
    if not in_child:
        return prepare(spec, out)
    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps(spec))
    return child.run([str(spec_path), str(out)], out)


def _rows(out: Path, size: int) -> Iterator[list[dict]]:
    with open(out / "rows.jsonl", "rb") as lines:  # orjson lines (prepare.py)
        while batch := [orjson.loads(line) for line in islice(lines, size)]:
            yield batch


@collector_paused()  # (gc_pause.py)
def index_job(
    doc: Document,
    index: KnowledgeIndex,
    store: FileStore | None,
    in_child: bool,
    heartbeat: Callable[[], None] | None = None,
) -> int:
    """Re-chunk `doc` and replace its points and rows; marks it indexed and commits. Raises
    IngestError when there is nothing to index, ParseError when the content is unreadable.

    Points first, as index_document does: they are upserted by deterministic id (the old ones stay
    searchable until replaced), the document's other points deleted, and on any failure all of
    its points removed. Then the rows: the old ones deleted and the new ones inserted ROW_BATCH at
    a time, each its own short transaction (SQLite's write lock must never be held across a yield:
    another greenlet waiting on it would block the loop), and last the status. Until then the
    document is `processing`, which nothing reads rows of; a failure deletes them (mark_failed), a
    crash leaves the job to be resumed, which starts over.
    """
    from .index import UPSERT_BATCH

    document_id, fields = doc.id, document_fields(doc)
    with tempfile.TemporaryDirectory(prefix="wwhd-job-") as tmp:
        work = Path(tmp)
        spec = _spec(doc, store, index, work)
        db.session.expire(doc, ["content"])  # 8 MB for a 10 MB transcript; the file has it now
        try:
            result = run_prepare(spec, work, in_child)
        finally:
            handoff.discard(spec.get("handoff_path"))  # used once; a retry parses the original
        if not result["chunks"]:
            raise IngestError("The document has no text to index.")
        dense = None
        if result["dense"]:
            import numpy as np

            dense = np.load(work / "out" / "dense.npy", mmap_mode="r")
        wanted: set[str] = set()
        try:
            for batch in _rows(work / "out", UPSERT_BATCH):
                sparse_vectors = [tuple(row.pop("sparse")) for row in batch]
                vectors = None
                if dense is not None:
                    vectors = dense[len(wanted) : len(wanted) + len(batch)].tolist()
                index.write_points(
                    [
                        {"id": row["id"], "text": row["text"], "payload": row_payload(fields, row)}
                        for row in batch
                    ],
                    sparse_vectors,
                    vectors,
                )
                wanted.update(row["id"] for row in batch)
                if heartbeat is not None:
                    heartbeat()
            del dense
            index.delete_points(sorted(index.document_point_ids(document_id) - wanted))
        except Exception:
            try:
                index.delete_document(document_id)
            except Exception:  # Qdrant is down; reconcile removes leftovers later
                log.warning("could not remove partial vectors", extra={"document_id": document_id})
            raise
        # The rows are read from the file again rather than kept: ~20 MB less at the peak.
        _replace_rows(document_id, _rows(work / "out", ROW_BATCH))
    if in_child:
        log.info(
            "chunks prepared in a child process",
            extra={"document_id": document_id, "prepare_peak_rss_mb": result["peak_rss_mb"]},
        )
    return len(wanted)


def _replace_rows(document_id: int, batches: Iterator[list[dict]]) -> None:
    db.session.execute(delete(Chunk).where(Chunk.document_id == document_id))
    db.session.commit()
    count = 0
    for batch in batches:
        for row in batch:
            del row["sparse"]
            row["document_id"] = document_id
        db.session.execute(insert(Chunk), batch)
        db.session.commit()
        count += len(batch)
        pause()
    now = utcnow()
    db.session.execute(
        update(Document)
        .where(Document.id == document_id)
        .values(
            chunk_count=count,
            status="indexed",
            error=None,
            attempts=0,  # the retry budget is per failure streak
            indexed_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
