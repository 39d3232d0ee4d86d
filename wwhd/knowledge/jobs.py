"""Background ingestion jobs: pending → processing → indexed | failed, with a heartbeat and resume."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy import and_, delete, or_, select, update

from .. import metrics
from ..extensions import db
from ..models import Chunk, Document
from ..models.base import utcnow
from ..offload import cpu_bound
from . import reconcile
from .child import use_child
from .errors import IndexUnavailable
from .files import FileMissing, FileStore
from .ingest import IngestError
from .job_index import index_job
from .parsers import ParseError

if TYPE_CHECKING:  # index.py imports qdrant_client (wwhd/lazy.py)
    from .index import KnowledgeIndex

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


def mark_failed(app: Flask, document_id: int, message: str, index: KnowledgeIndex) -> None:
    """Leave nothing searchable and no chunk rows for a failed document, then record why (commits)."""
    try:
        index.delete_document(document_id)
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


def process_document(
    app: Flask, document_id: int, index: KnowledgeIndex, store: FileStore | None
) -> str:
    """Run one ingestion job to the end in the calling thread; returns the final status.

    Claims the document first (pending, or processing with a stale heartbeat); when someone else
    owns it, or it is already indexed, does nothing and returns its current status ("missing"
    when it no longer exists).
    """
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
                index,
            )
            return "failed"
        try:
            with Heartbeat(app, document_id, cfg["JOB_HEARTBEAT_SECONDS"]):
                chunks = index_job(doc, index, store, use_child(cfg["INGEST_IN_CHILD"]))
        except Exception as exc:
            if not isinstance(exc, (ParseError, IngestError)):
                log.exception("ingestion job failed", extra={"document_id": document_id})
            db.session.rollback()
            mark_failed(app, document_id, describe_failure(exc), index)
            return "failed"
        finally:
            db.session.remove()
        log.info("document indexed", extra={"document_id": document_id, "chunks": chunks})
        return "indexed"


def release_memory() -> bool:
    """Hand the heap's free pages back to the OS after a job (glibc's malloc_trim): a job frees
    tens of MB of rows and batches, which glibc otherwise keeps in its arenas, so the worker's
    RSS stayed at its peak. In a real thread (ctypes releases the GIL): trimming walks the whole
    heap. False where there is no glibc."""
    try:
        import ctypes

        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return False
    return bool(cpu_bound(trim, 0))


class JobRunner:
    """A per-app thread pool for ingestion jobs plus the index's self-healing check. Double
    submissions are harmless: claim() lets exactly one run do the work.

    start() (create_app calls it when serving) queues the start-up sweep: heal the index from SQL,
    then resume jobs a dead process left behind; after that the check repeats every
    INDEX_CHECK_SECONDS.
    """

    def __init__(
        self, app: Flask, index: KnowledgeIndex, store: FileStore | None, workers: int = 2
    ):
        self.app, self.index, self.store = app, index, store
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="wwhd-job")
        self._lock = threading.Lock()
        self._healing = threading.Lock()
        self._stop = threading.Event()
        self._active: set[int] = set()
        self._timer: threading.Timer | None = None
        self._checker: threading.Thread | None = None
        self._futures: dict[int, list[Future]] = {}
        self.startup: Future | None = None  # the start-up sweep; resolves to the resumed jobs
        self.last_health: reconcile.Health | None = None
        self.checks = 0  # index checks finished; wait_for_check() lets tests sync on them
        self._checked = threading.Condition()
        self._tasks: list[tuple[str, float, object]] = []  # (name, interval, fn(app)), see every()

    def every(self, name: str, interval: float, task) -> None:
        """Also run `task(app)` in the start-up sweep and then every `interval` seconds (0: at
        start-up only). Register before start(); a failing run is logged, the next one runs."""
        self._tasks.append((name, interval, task))

    def start(self) -> Future:
        """Queue the start-up sweep (once) and start the periodic index check."""
        with self._lock:
            if self.startup is None:
                self.startup = self._pool.submit(self._startup)
                interval = self.app.config.get("INDEX_CHECK_SECONDS", 300)
                if interval > 0:
                    self._checker = threading.Thread(
                        target=self._check_every,
                        args=(interval,),
                        name="wwhd-index-check",
                        daemon=True,
                    )
                    self._checker.start()
                for name, every, task in self._tasks:
                    if every > 0:
                        threading.Thread(
                            target=self._repeat,
                            args=(name, every, task),
                            name=f"wwhd-{name}",
                            daemon=True,
                        ).start()
            return self.startup

    def submit(self, document_id: int) -> Future:
        """Queue a job; the future resolves to the final status."""
        future = self._pool.submit(self._run, document_id)
        with self._lock:
            futures = [f for f in self._futures.get(document_id, []) if not f.done()]
            self._futures[document_id] = [*futures, future]
        return future

    def run(self, document_id: int) -> str:
        """Run one job in the calling thread (the CLI); returns the final status."""
        return self._run(document_id)

    def wait(self, document_id: int, timeout: float = 60) -> str | None:
        """Block until every job queued for the document has finished; the last one's status
        (None when none was queued). For tests and the CLI, which must not poll."""
        with self._lock:
            futures = list(self._futures.get(document_id, []))
        results = [future.result(timeout=timeout) for future in futures]
        # A run that found the document already claimed reports "processing"; prefer the outcome.
        return next(
            (r for r in reversed(results) if r in ("indexed", "failed", "missing", "deleted")),
            results[-1] if results else None,
        )

    def _run(self, document_id: int) -> str:
        with self._lock:
            self._active.add(document_id)
        try:
            release_memory()  # what the upload request just freed (its body, the parsed file)
            return process_document(self.app, document_id, self.index, self.store)
        finally:
            with self._lock:
                self._active.discard(document_id)
            release_memory()

    def delete_document(self, document_id: int, original_key: str | None) -> Future:
        """Once the document's rows are deleted (committed): hide it from local search now, then
        delete its points, a page at a time, and its original in the background. If the process
        dies first, the self-healing check deletes the points of a checksum SQL no longer has."""
        self.index.hide_document(document_id)
        future = self._pool.submit(self._forget, document_id, original_key)
        with self._lock:
            self._futures[document_id] = [*self._futures.get(document_id, []), future]
        return future

    def _forget(self, document_id: int, original_key: str | None) -> str:
        try:
            self.index.delete_document_in_pages(document_id)
        except Exception:  # Qdrant down: the index check removes them later
            log.warning(
                "could not delete the points of a deleted document",
                extra={"document_id": document_id},
            )
        if original_key and self.store is not None:
            with self.app.app_context():
                # Originals are keyed by content: the same file uploaded again meanwhile keeps it.
                reused = db.session.scalar(
                    select(Document.id).where(Document.original_key == original_key).limit(1)
                )
                db.session.remove()
            if reused is None:
                try:
                    self.store.delete(original_key)
                except Exception:  # the record is gone; a stray original is harmless
                    log.warning("could not delete original", extra={"document_id": document_id})
        return "deleted"

    def heal(self) -> reconcile.Health | None:
        """Run the cheap SQL ↔ Qdrant check and repair what it finds; None when a check is
        already running. Emits the IndexDrift metric."""
        if not self._healing.acquire(blocking=False):
            return None
        try:
            with self.app.app_context():
                try:
                    health = reconcile.heal(self.index)
                finally:
                    db.session.remove()
            metrics.record_index_check(self.app.config, health)
            with self._checked:
                self.last_health = health
                self.checks += 1
                self._checked.notify_all()
            return health
        finally:
            self._healing.release()

    def wait_for_check(self, after: int, timeout: float = 60) -> bool:
        """Block until more than `after` index checks have finished; False on timeout."""
        with self._checked:
            return self._checked.wait_for(lambda: self.checks > after, timeout)

    def _safe_heal(self) -> reconcile.Health | None:
        try:
            return self.heal()
        except Exception:
            log.exception("index self-healing check failed")
            return None

    def _check_every(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self._pool.submit(self._safe_heal)
            except RuntimeError:  # the pool was shut down
                return

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

    def _run_task(self, name: str, task) -> None:
        try:
            task(self.app)
        except Exception:
            log.exception("periodic task failed", extra={"task": name})

    def _repeat(self, name: str, interval: float, task) -> None:
        while not self._stop.wait(interval):
            try:
                self._pool.submit(self._run_task, name, task)
            except RuntimeError:  # the pool was shut down
                return

    def _startup(self) -> list[Future]:
        self._safe_heal()
        for name, _, task in self._tasks:
            self._run_task(name, task)
        return self._safe_recover()

    def shutdown(self, wait: bool = True) -> None:
        self._stop.set()
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
        self._pool.shutdown(wait=wait)
        if wait and self._checker is not None:
            self._checker.join()
