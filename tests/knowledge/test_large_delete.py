"""Deleting a large document answers at once; its 20k points go in a job (issue 14)."""

from __future__ import annotations

import time
import uuid

import pytest
from qdrant_client import models as qm

from tests.conftest import Auth, close_app, make_app
from wwhd.deps import get_deps, get_runner
from wwhd.extensions import db
from wwhd.models import Chunk, Document

CHUNKS = 20_000


def big_document(app) -> int:
    """A 20k-chunk indexed document written straight into SQL and the index (ingesting it would
    take minutes and is not what is measured)."""
    with app.app_context():
        doc = Document(
            namespace="general",
            title="Ten years of talks",
            content="(large)",
            checksum="c" * 64,
            status="indexed",
            chunk_count=CHUNKS,
        )
        db.session.add(doc)
        db.session.commit()
        rows = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"big-{n}")),
                "document_id": doc.id,
                "index": n,
                "text": f"part {n} of the long archive",
            }
            for n in range(CHUNKS)
        ]
        db.session.execute(Chunk.__table__.insert(), rows)
        db.session.commit()
        index = get_deps(app).index
        index.ensure()
        vector = {"bm25": qm.SparseVector(indices=[1, 2], values=[1.0, 1.0])}
        for start in range(0, CHUNKS, 2000):
            index.client.upsert(
                index.alias,
                points=[
                    qm.PointStruct(
                        id=row["id"],
                        vector=vector,
                        payload={"document_id": doc.id, "namespace": "general"},
                    )
                    for row in rows[start : start + 2000]
                ],
                wait=True,
            )
        assert index.count() == CHUNKS
        return doc.id


@pytest.mark.slow  # ~24 s each: 20k chunks written first
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_deleting_a_20k_chunk_document_answers_within_2_s(tmp_path, request, database):
    overrides = {"QDRANT_PATH": str(tmp_path / "qdrant")}  # embedded on disk, the slow case
    if database == "postgresql":
        overrides["DATABASE_URL"] = request.getfixturevalue("postgres_db")
    app = make_app(tmp_path, **overrides)
    try:
        document_id = big_document(app)
        client = app.test_client()
        admin = Auth(app, client).headers("admin")
        started = time.perf_counter()
        reply = client.delete(f"/api/v1/documents/{document_id}", headers=admin)
        elapsed = time.perf_counter() - started
        assert reply.status_code == 200 and reply.get_json()["deleted"] is True
        assert elapsed <= 2.0, f"DELETE took {elapsed:.2f} s"
        with app.app_context():
            assert db.session.get(Document, document_id) is None
            assert db.session.query(Chunk).filter_by(document_id=document_id).count() == 0
        # The points follow in the job.
        assert get_runner(app).wait(document_id, timeout=300) == "deleted"
        assert get_deps(app).index.count() == 0
    finally:
        close_app(app)
        get_deps(app).index.client.close()
