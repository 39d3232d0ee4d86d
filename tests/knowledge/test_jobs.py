"""Ingestion jobs: states, heartbeat, failures that leave nothing searchable, and resume after a crash."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import close_app
from wwhd import create_app
from wwhd.deps import get_deps, get_runner
from wwhd.extensions import db
from wwhd.knowledge import reconcile
from wwhd.knowledge.index import KnowledgeIndex
from wwhd.knowledge.ingest import add_source, build_rows, point_payload
from wwhd.knowledge.jobs import Heartbeat, claim
from wwhd.knowledge.parsers import parse_text
from wwhd.models import Chunk, Document
from wwhd.models.base import utcnow

LONG_TEXT = "\n\n".join(
    f"Paragraph {n}: sweep the floor, then sit, then breathe slowly and count to {n}. "
    + "Every small habit compounds over the years. " * 8
    for n in range(200)
)


def process_document(app, document_id: int) -> str:
    """One job run in the calling thread with the app's index and file store."""
    return get_runner(app).run(document_id)


def add(app, text: str, namespace: str = "general") -> int:
    with app.app_context():
        result = add_source(namespace, text=text, title="Doc")
        db.session.commit()
        return result.document.id


def state(app, document_id: int) -> tuple[Document, int, set[str]]:
    """The document, its chunk row count, and the ids of its points."""
    with app.app_context():
        db.session.expire_all()
        doc = db.session.get(Document, document_id)
        rows = db.session.query(Chunk).filter_by(document_id=document_id).count()
        points = get_deps(app).index.document_point_ids(document_id)
        db.session.expunge_all()
        return doc, rows, points


def test_pending_document_is_indexed(app):
    doc_id = add(app, LONG_TEXT)
    assert process_document(app, doc_id) == "indexed"
    doc, rows, points = state(app, doc_id)
    assert doc.status == "indexed" and doc.error is None and doc.indexed_at is not None
    assert doc.chunk_count == rows == len(points) > 64  # more than one upsert batch
    assert doc.heartbeat_at is not None and doc.attempts == 0
    # Already indexed: a second run does nothing.
    assert process_document(app, doc_id) == "indexed"
    assert process_document(app, 12345) == "missing"


def test_unparseable_document_fails_readably_with_nothing_indexed(app):
    with app.app_context():
        doc = Document(
            namespace="general", title="Empty", content="   ", checksum="x" * 64, status="pending"
        )
        db.session.add(doc)
        db.session.commit()
        doc_id = doc.id
    assert process_document(app, doc_id) == "failed"
    doc, rows, points = state(app, doc_id)
    assert doc.status == "failed" and "empty" in doc.error.lower()
    assert doc.chunk_count == rows == len(points) == 0


class FailingIndex(KnowledgeIndex):
    """Qdrant that drops the connection after `ok_batches` upserts (the network edge failing)."""

    ok_batches = 1

    def write_points(self, batch, sparse_vectors, dense=None):
        if self.ok_batches <= 0:
            raise ConnectionError("connection reset by peer")
        self.ok_batches -= 1
        return super().write_points(batch, sparse_vectors, dense)


def test_failure_mid_indexing_leaves_no_vectors(tmp_path):
    from qdrant_client import QdrantClient

    from wwhd.deps import build_deps

    config = {
        "APP_ENV": "testing",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'f.db'}",
        "QDRANT_PATH": ":memory:",
        "UPLOAD_DIR": str(tmp_path / "up"),
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
        "MODEL_EMBED": "",
    }
    probe = create_app(config)
    index = FailingIndex(QdrantClient(location=":memory:"), "wwhd_chunks")
    app = create_app(config, deps=build_deps(probe.config, index=index))
    with app.app_context():
        db.create_all()
        from wwhd.knowledge.namespaces import seed_namespaces

        seed_namespaces()
        db.session.commit()
    doc_id = add(app, LONG_TEXT)
    assert process_document(app, doc_id) == "failed"
    doc, rows, points = state(app, doc_id)
    assert doc.status == "failed" and "unexpectedly" in doc.error and "ConnectionError" in doc.error
    assert rows == len(points) == index.count() == 0
    # Once Qdrant is back, a retry indexes it completely.
    index.ok_batches = 100
    with app.app_context():
        db.session.get(Document, doc_id).status = "pending"
        db.session.commit()
    assert process_document(app, doc_id) == "indexed"
    doc, rows, points = state(app, doc_id)
    assert rows == len(points) == doc.chunk_count > 64


def crash_midway(app, document_id: int, heartbeat_age_s: float) -> int:
    """What a process killed during indexing leaves: `processing`, an old heartbeat, part of the
    new points written, plus a point from an earlier chunking of the same document."""
    with app.app_context():
        doc = db.session.get(Document, document_id)
        rows = build_rows(doc, parse_text(doc.content))
        half = rows[: len(rows) // 2]
        stale = Chunk(
            id="00000000-0000-5000-8000-000000000001",
            document_id=doc.id,
            index=999,
            text="old wording",
            start_s=None,
            end_s=None,
            page=None,
        )
        get_deps(app).index.upsert(
            [{"id": r.id, "text": r.text, "payload": point_payload(doc, r)} for r in half + [stale]]
        )
        doc.status, doc.heartbeat_at, doc.attempts = (
            "processing",
            utcnow() - timedelta(seconds=heartbeat_age_s),
            1,
        )
        db.session.commit()
        return len(half) + 1


def test_job_left_processing_resumes_after_restart_without_duplicates(tmp_path):
    config = {
        "APP_ENV": "testing",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
        "QDRANT_PATH": str(tmp_path / "qdrant"),
        "QDRANT_URL": "",
        "UPLOAD_DIR": str(tmp_path / "up"),
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
        "MODEL_EMBED": "",
        "JOB_STALE_SECONDS": 60,
    }
    first = create_app(config)
    with first.app_context():
        db.create_all()
        from wwhd.knowledge.namespaces import seed_namespaces

        seed_namespaces()
        db.session.commit()
    dead = add(first, LONG_TEXT)
    waiting = add(first, "A pending document nobody started: rest the eyes every hour.")
    written = crash_midway(first, dead, heartbeat_age_s=300)
    assert len(get_deps(first).index.document_point_ids(dead)) == written
    get_deps(first).index.client.close()  # the process dies; local mode releases the folder

    second = create_app({**config, "JOBS_AUTOSTART": True})  # as served: create_app starts it
    runner = get_runner(second)
    futures = runner.startup.result(timeout=60)
    assert sorted(f.result(timeout=60) for f in futures) == ["indexed", "indexed"]
    for document_id in (dead, waiting):
        doc, rows, points = state(second, document_id)
        assert doc.status == "indexed" and rows == len(points) == doc.chunk_count > 0
    with second.app_context():
        drift = reconcile.report(get_deps(second).index)
    assert drift.total == 0, drift.to_dict()
    runner.shutdown()
    get_deps(second).index.client.close()


def test_live_job_is_not_taken_over(app):
    doc_id = add(app, LONG_TEXT)
    crash_midway(app, doc_id, heartbeat_age_s=1)  # heartbeat still fresh: its owner may be alive
    assert process_document(app, doc_id) == "processing"
    runner = get_runner(app)
    assert runner.start().result(timeout=60) == []
    assert runner._timer is not None  # it re-checks once the heartbeat could have gone stale
    runner.shutdown()


def test_attempts_are_bounded(app):
    doc_id = add(app, LONG_TEXT)
    with app.app_context():
        db.session.get(Document, doc_id).attempts = app.config["JOB_MAX_ATTEMPTS"]
        db.session.commit()
    assert process_document(app, doc_id) == "failed"
    doc, rows, points = state(app, doc_id)
    assert "Gave up after" in doc.error and rows == len(points) == 0


def test_claim_is_exclusive_and_heartbeat_moves(app):
    doc_id = add(app, "Short text about tea.")
    with app.app_context():
        assert claim(doc_id, 60) is True
        assert claim(doc_id, 60) is False
        db.session.get(Document, doc_id).heartbeat_at = utcnow() - timedelta(seconds=600)
        db.session.commit()
        before = db.session.get(Document, doc_id).heartbeat_at
    Heartbeat(app, doc_id, 60).beat()
    doc, _, _ = state(app, doc_id)
    assert doc.heartbeat_at > before


def test_runner_submissions_run_once(app):
    doc_id = add(app, LONG_TEXT)
    runner = get_runner(app)
    futures = [runner.submit(doc_id) for _ in range(4)]
    results = [f.result(timeout=60) for f in futures]
    assert results.count("indexed") >= 1 and set(results) <= {"indexed", "processing"}
    assert runner.wait(doc_id) == "indexed"
    doc, rows, points = state(app, doc_id)
    assert rows == len(points) == doc.chunk_count
    runner.shutdown()


@pytest.mark.parametrize("status", ["indexed", "failed"])
def test_finished_documents_are_not_resumed(app, status):
    doc_id = add(app, "Short text about rice.")
    with app.app_context():
        db.session.get(Document, doc_id).status = status
        db.session.commit()
    assert get_runner(app).start().result(timeout=60) == []


def test_jobs_and_reconcile_on_postgresql(tmp_path, postgres_db):
    config = {
        "APP_ENV": "testing",
        "DATABASE_URL": postgres_db,
        "QDRANT_PATH": ":memory:",
        "QDRANT_URL": "",
        "UPLOAD_DIR": str(tmp_path / "up"),
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
        "MODEL_EMBED": "",
    }
    app = create_app(config)
    with app.app_context():
        db.create_all()
        from wwhd.knowledge.namespaces import seed_namespaces

        seed_namespaces()
        db.session.commit()
    doc_id = add(app, LONG_TEXT)
    crash_midway(app, doc_id, heartbeat_age_s=300)
    futures = get_runner(app).start().result(timeout=60)
    assert [f.result(timeout=60) for f in futures] == ["indexed"]
    doc, rows, points = state(app, doc_id)
    assert rows == len(points) == doc.chunk_count > 64
    with app.app_context():
        assert reconcile.report(get_deps(app).index).total == 0
        db.session.delete(db.session.get(Document, doc_id))
        db.session.commit()
        assert db.session.query(Chunk).count() == 0  # rows cascade with the document
    close_app(app)  # stops the job runner too
