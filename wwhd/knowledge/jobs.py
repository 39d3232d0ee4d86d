"""Background ingestion jobs: pending → processing → indexed | failed, with a heartbeat and resume."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import and_, delete, or_, select, update

from ..extensions import db
from ..models import Chunk, Document
from ..models.base import utcnow
from .errors import IndexUnavailable
from .files import FileMissing, get_file_store
from .ingest import IngestError, index_document, parsed_for
from .parsers import ParseError

log = logging.getLogger(__name__)


def _stale_cutoff(stale_seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=stale_seconds)


def claim(document_id: int, stale_seconds: float, statuses: tuple[str, ...] = ("pending",)) -> bool:
    """Atomically move the document to `processing` when it is in one of `statuses` or is a
    `processing` job whose heartbeat went stale (its process died). Commits. True when we own it.

    One conditional UPDATE, so two processes (or a job and an admin edit) never both win.
    """
    condition = or_(
        Document.status.in_(statuses),
        and_(
            Document.status == "processing",
            or_(
                Document.heartbeat_at.is_(None),
                Document.heartbeat_at < _stale_cutoff(stale_seconds),
            ),
        ),
    )
    result = db.session.execute(
        update(Document)
        .where(Document.id == document_id, condition)
        .values(
            status="processing", heartbeat_at=utcnow(), attempts=Document.attempts + 1, error=None
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    db.session.expire_all()
    return result.rowcount == 1


def describe_failure(exc: BaseException) -> str:
    """A message an admin can act on; internals stay in the log."""
    if isinstance(exc, ParseError):
        return f"Could not read the source: {exc.message}."
    if isinstance(exc, IngestError):
        return str(exc)
    if isinstance(exc, IndexUnavailable):
        return "The search index was unavailable while indexing; reindex the document to retry."
    if isinstance(exc, FileMissing):
        return "The uploaded original is missing from storage."
    return f"Indexing failed unexpectedly ({type(exc).__name__}); see the server log and reindex to retry."


def mark_failed(app: Flask, document_id: int, message: str) -> None:
    """Leave nothing searchable and no chunk rows for a failed document, then record why (commits)."""
    from ..deps import get_deps

    try:
        get_deps(app).index.delete_document(document_id)
    except Exception:  # Qdrant down: reconcile deletes points of failed documents later
        log.warning(
            "could not remove vectors of failed document", extra={"document_id": document_id}
        )
    db.session.rollback()
    db.session.execute(delete(Chunk).where(Chunk.document_id == document_id))
    db.session.execute(
        update(Document)
        .where(Document.id == document_id)
        .values(
            status="failed",
            error=message[:2000],
            chunk_count=0,
            heartbeat_at=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


class Heartbeat:
    """Refreshes `heartbeat_at` from its own thread and session while a job runs, so a slow
    embedding call never makes a live job look dead."""

    def __init__(self, app: Flask, document_id: int, interval: float):
        self.app, self.document_id, self.interval = app, document_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"wwhd-heartbeat-{document_id}", daemon=True
        )

    def beat(self) -> None:
        with self.app.app_context():
            db.session.execute(
                update(Document)
                .where(Document.id == self.document_id, Document.status == "processing")
                .values(heartbeat_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            db.session.commit()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:
                log.warning(
                    "heartbeat failed", extra={"document_id": self.document_id}, exc_info=True
                )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def process_document(app: Flask, document_id: int) -> str:
    """Run one ingestion job to the end in the calling thread; returns the final status.

    Claims the document first (pending, or processing with a stale heartbeat); when someone else
    owns it, or it is already indexed, does nothing and returns its current status ("missing"
    when it no longer exists).
    """
    from ..deps import get_deps

    cfg = app.config
    with app.app_context():
        if not claim(document_id, cfg["JOB_STALE_SECONDS"]):
            doc = db.session.get(Document, document_id)
            return doc.status if doc else "missing"
        doc = db.session.get(Document, document_id)
        if doc.attempts > cfg["JOB_MAX_ATTEMPTS"]:
            mark_failed(
                app,
                document_id,
                f"Gave up after {cfg['JOB_MAX_ATTEMPTS']} attempts that did not finish "
                "(the process stopped while indexing). Fix the source and reindex.",
            )
            return "failed"
        try:
            with Heartbeat(app, document_id, cfg["JOB_HEARTBEAT_SECONDS"]):
                chunks = index_document(
                    doc, get_deps(app).index, parsed_for(doc, get_file_store(app))
                )
        except Exception as exc:
            if not isinstance(exc, (ParseError, IngestError)):
                log.exception("ingestion job failed", extra={"document_id": document_id})
            db.session.rollback()
            mark_failed(app, document_id, describe_failure(exc))
            return "failed"
        finally:
            db.session.remove()
        log.info("document indexed", extra={"document_id": document_id, "chunks": chunks})
        return "indexed"


class JobRunner:
    """A per-app thread pool for ingestion jobs. Double submissions are harmless: claim() lets
    exactly one run do the work."""

    def __init__(self, app: Flask, workers: int = 2):
        self.app = app
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="wwhd-job")
        self._lock = threading.Lock()
        self._active: set[int] = set()
        self._timer: threading.Timer | None = None
        self._futures: dict[int, list[Future]] = {}
        self.startup: Future | None = None  # the first recovery sweep; tests wait on it

    def submit(self, document_id: int) -> Future:
        """Queue a job; the future resolves to the final status."""
        future = self._pool.submit(self._run, document_id)
        with self._lock:
            futures = [f for f in self._futures.get(document_id, []) if not f.done()]
            self._futures[document_id] = [*futures, future]
        return future

    def wait(self, document_id: int, timeout: float = 60) -> str | None:
        """Block until every job queued for the document has finished; the last one's status
        (None when none was queued). For tests and the CLI, which must not poll."""
        with self._lock:
            futures = list(self._futures.get(document_id, []))
        results = [future.result(timeout=timeout) for future in futures]
        # A run that found the document already claimed reports "processing"; prefer the outcome.
        return next(
            (r for r in reversed(results) if r in ("indexed", "failed", "missing")),
            results[-1] if results else None,
        )

    def _run(self, document_id: int) -> str:
        with self._lock:
            self._active.add(document_id)
        try:
            return process_document(self.app, document_id)
        finally:
            with self._lock:
                self._active.discard(document_id)

    def recover(self) -> list[Future]:
        """Queue every pending document and every processing one whose heartbeat went stale (its
        process died); re-check fresh ones when they would turn stale. Returns the queued futures."""
        stale_seconds = self.app.config["JOB_STALE_SECONDS"]
        with self.app.app_context():
            rows = db.session.execute(
                select(Document.id, Document.status, Document.heartbeat_at)
                .where(Document.status.in_(("pending", "processing")))
                .order_by(Document.id)
            ).all()
            db.session.remove()
        cutoff = _stale_cutoff(stale_seconds)
        futures: list[Future] = []
        recheck: float | None = None
        with self._lock:
            active = set(self._active)
        for document_id, status, heartbeat in rows:
            if document_id in active:
                continue
            if status == "pending" or heartbeat is None or heartbeat < cutoff:
                futures.append(self.submit(document_id))
            else:
                wait = (heartbeat - cutoff).total_seconds() + 1
                recheck = wait if recheck is None else min(recheck, wait)
        if futures:
            log.info("resuming ingestion jobs", extra={"documents": len(futures)})
        if recheck is not None:
            self._schedule(recheck)
        return futures

    def _schedule(self, delay: float) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(delay, self._safe_recover)
            self._timer.daemon = True
            self._timer.start()

    def _safe_recover(self) -> list[Future]:
        try:
            return self.recover()
        except Exception:
            log.exception("ingestion job recovery failed")
            return []

    def _startup(self) -> list[Future]:
        from .reconcile import rebuild_if_empty

        try:
            with self.app.app_context():
                rebuild_if_empty(self.app)
        except Exception:
            log.exception("index rebuild check failed")
        return self._safe_recover()

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
        self._pool.shutdown(wait=wait)


_runner_lock = threading.Lock()


def get_runner(app: Flask) -> JobRunner:
    """The app's runner, started on first use together with a recovery sweep in the background."""
    runner = app.extensions.get("wwhd_jobs")
    if runner is None:
        with _runner_lock:
            runner = app.extensions.get("wwhd_jobs")
            if runner is None:
                runner = JobRunner(app, app.config["JOB_WORKERS"])
                app.extensions["wwhd_jobs"] = runner
                runner.startup = runner._pool.submit(runner._startup)
    return runner
