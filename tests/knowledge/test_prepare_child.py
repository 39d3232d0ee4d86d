"""A job's chunks prepared in a child process (INGEST_IN_CHILD): the same rows and points as the
in-process path and as index_document, and a child that dies fails the job with nothing left."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bench.ingestion import transcript
from tests.tests_support import add_upload
from wwhd.deps import get_deps, get_runner
from wwhd.extensions import db
from wwhd.knowledge import child as child_process
from wwhd.knowledge import job_index
from wwhd.knowledge.files import get_file_store
from wwhd.knowledge.ingest import add_source, index_document, parsed_for
from wwhd.knowledge.parsers import ParseError
from wwhd.models import Chunk, Document

VTT = transcript(0.15, seed=3)  # ~80 chunks: more than two upsert batches


def upload(app) -> int:
    return add_upload(app, VTT)[0]


def snapshot(app, document_id: int) -> tuple[list[tuple], dict]:
    """The document's chunk rows and its points (payload, sparse and dense vectors) by id."""
    with app.app_context():
        rows = [
            (c.id, c.index, c.text, c.start_s, c.end_s, c.page, c.marks)
            for c in db.session.scalars(
                select(Chunk).where(Chunk.document_id == document_id).order_by(Chunk.index)
            )
        ]
        index = get_deps(app).index
        points = index.client.retrieve(
            index.alias, ids=[r[0] for r in rows], with_payload=True, with_vectors=True
        )
        db.session.remove()
    by_id = {}
    for p in points:
        vectors = dict(p.vector)
        bm25 = vectors.pop("bm25")
        by_id[str(p.id)] = (p.payload, list(bm25.indices), list(bm25.values), vectors)
    return rows, by_id


def state(app, document_id: int) -> tuple[str, str | None, int, int]:
    with app.app_context():
        db.session.expire_all()
        doc = db.session.get(Document, document_id)
        rows = db.session.query(Chunk).filter_by(document_id=document_id).count()
        points = len(get_deps(app).index.document_point_ids(document_id))
        result = doc.status, doc.error, rows, points
        db.session.remove()
        return result


def test_child_process_indexes_exactly_like_the_in_process_paths(app_factory):
    child = app_factory("child", INGEST_IN_CHILD="always")
    inline = app_factory("inline", INGEST_IN_CHILD="never")
    legacy = app_factory("legacy", INGEST_IN_CHILD="never")
    ids = [upload(a) for a in (child, inline, legacy)]
    assert ids[0] == ids[1] == ids[2]  # chunk ids are derived from the document id
    assert get_runner(child).run(ids[0]) == "indexed"
    assert get_runner(inline).run(ids[1]) == "indexed"
    with legacy.app_context():  # the request path (an edit), as ingestion was before
        doc = db.session.get(Document, ids[2])
        index_document(doc, get_deps(legacy).index, parsed_for(doc, get_file_store(legacy)))
    got = [snapshot(a, ids[0]) for a in (child, inline, legacy)]
    rows, points = got[0]
    assert len(rows) > 64 and len(points) == len(rows)
    assert all(v["dense"] and len(v["dense"]) == 256 for *_, v in points.values())  # local model
    assert rows[0][3] is not None and rows[0][6]  # cue times and marks survived the trip
    assert got[1] == got[0]
    assert got[2] == got[0]
    with child.app_context():
        assert db.session.get(Document, ids[0]).chunk_count == len(rows)


def test_child_that_dies_fails_the_job_with_nothing_written(app_factory, monkeypatch):
    app = app_factory(INGEST_IN_CHILD="always")
    document_id = upload(app)
    monkeypatch.setattr(
        child_process,
        "CHILD_COMMAND",
        ["-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
    )
    assert get_runner(app).run(document_id) == "failed"
    status, error, rows, points = state(app, document_id)
    assert status == "failed" and "PrepareFailed" in error
    assert rows == points == 0
    # The next attempt, with a working child, indexes it completely.
    monkeypatch.undo()
    with app.app_context():
        db.session.get(Document, document_id).status = "pending"
        db.session.commit()
    assert get_runner(app).run(document_id) == "indexed"
    status, error, rows, points = state(app, document_id)
    assert status == "indexed" and error is None and rows == points > 64


def test_unreadable_content_in_the_child_is_a_readable_failure(app_factory):
    app = app_factory(INGEST_IN_CHILD="always")
    with app.app_context():
        doc = Document(
            namespace="general", title="Empty", content="   ", checksum="y" * 64, status="pending"
        )
        db.session.add(doc)
        db.session.commit()
        document_id = doc.id
    assert get_runner(app).run(document_id) == "failed"
    status, error, rows, points = state(app, document_id)
    assert status == "failed" and "empty" in error.lower() and "Could not read" in error
    assert rows == points == 0


@pytest.mark.parametrize("mode", ["always", "never"])
def test_failure_between_row_batches_leaves_no_rows_or_points(app_factory, monkeypatch, mode):
    """Rows go in as several short transactions; a failure after the first leaves nothing."""
    app = app_factory(INGEST_IN_CHILD=mode)
    document_id = upload(app)
    monkeypatch.setattr(job_index, "ROW_BATCH", 16)
    real_insert, calls = job_index.insert, []

    def failing_insert(table):
        calls.append(table)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_insert(table)

    monkeypatch.setattr(job_index, "insert", failing_insert)
    assert get_runner(app).run(document_id) == "failed"
    status, error, rows, points = state(app, document_id)
    assert status == "failed" and "OSError" in error
    assert rows == points == 0


def test_point_ids_read_off_the_postings_match_a_scroll(app):
    """document_point_ids answers from the in-process postings once they mirror the index (a
    filtered scroll in local mode checks every point): same ids, also for a point whose BM25 vector
    is empty, for points written before the postings were built, and after deletes."""
    index = get_deps(app).index
    index.ensure()

    def point(n: int, document_id: int, text: str) -> dict:
        return {
            "id": f"00000000-0000-5000-8000-{n:012d}",
            "text": text,
            "payload": {"document_id": document_id, "namespace": "general", "text": text},
        }

    index.upsert([point(1, 7, "breathe slowly"), point(2, 7, "the of and"), point(3, 8, "save")])
    index.prepare_search()  # built from the points above
    index.upsert([point(4, 7, "...")])  # nothing to index: an empty BM25 vector
    index.delete_points(["00000000-0000-5000-8000-000000000001"])

    def scrolled(document_id: int) -> set[str]:
        return {
            i for page in index.scroll_pages(where={"document_id": document_id}) for i, _ in page
        }

    assert index._mirrored
    for document_id in (7, 8, 9):
        assert index.document_point_ids(document_id) == scrolled(document_id)
    assert len(index.document_point_ids(7)) == 2


def test_upload_parsed_in_a_child_is_the_same_document(app_factory):
    docs = []
    for name, in_child in (("child", True), ("inline", False)):
        app = app_factory(name)
        with app.app_context():
            doc = add_source(
                "general", data=VTT, filename="talk.vtt", max_bytes=len(VTT), in_child=in_child
            ).document
            db.session.commit()
            docs.append((doc.content, doc.checksum, doc.kind, doc.title))
            with pytest.raises(ParseError) as err:
                add_source(
                    "general", data=b"\x00\x01 not text", filename="x.vtt", in_child=in_child
                )
            docs.append((err.value.message, err.value.code))
    assert docs[0] == docs[2] and docs[1] == docs[3]
    assert docs[0][2] == "vtt" and len(docs[0][0]) > 100_000


def test_the_child_loads_what_prepare_needs_not_the_app():
    import subprocess
    import sys

    probe = (
        "import wwhd.knowledge.prepare, wwhd.providers.local_embed\n"
        "print(sorted(m for m in ('flask', 'sqlalchemy', 'wwhd.api', 'wwhd.models')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", child_process.LEAN_PACKAGES + probe],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": child_process.PACKAGE_ROOT, "PATH": ""},
    )
    assert out.stdout.strip() == "[]"
