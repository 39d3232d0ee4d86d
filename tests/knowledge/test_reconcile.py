"""Reconcile and reindex: drift both ways is reported and repaired; Qdrant rebuilds from SQL."""

from __future__ import annotations

import hashlib

from sqlalchemy import event

from wwhd.deps import get_deps
from wwhd.extensions import db
from wwhd.knowledge import reconcile
from wwhd.knowledge.index import KnowledgeIndex
from wwhd.models import Chunk, Document
from wwhd.providers.base import Usage


def chunk_ids(namespace: str | None = None) -> set[str]:
    query = db.session.query(Chunk.id).join(Document).filter(Document.status == "indexed")
    if namespace:
        query = query.filter(Document.namespace == namespace)
    return {row[0] for row in query}


def test_samples_have_no_drift(samples, runner):
    result = runner.invoke(args=["wwhd", "reconcile"])
    assert result.exit_code == 0, result.output
    assert "No drift." in result.output


def test_drift_both_ways_is_reported_and_repaired(samples, runner):
    with samples.app_context():
        index = get_deps().index
        ids = sorted(chunk_ids())
        missing, stale = ids[0], ids[1]
        index.delete_points([missing])
        index.client.set_payload(
            index.alias, payload={"title": "Old title"}, points=[stale], wait=True
        )
        orphan = "00000000-0000-5000-8000-0000000000aa"
        index.upsert(
            [{"id": orphan, "text": "ghost of a deleted document", "payload": {"document_id": 999}}]
        )

        drift = reconcile.report(index)
        assert (
            drift.missing_points == [missing]
            and drift.stale_points == [stale]
            and drift.orphan_points == [orphan]
        )

    result = runner.invoke(args=["wwhd", "reconcile"])
    assert result.exit_code == 1 and "orphan points (no chunk row): 1" in result.output
    result = runner.invoke(args=["wwhd", "reconcile", "--repair"])
    assert result.exit_code == 0 and "Repaired 3 differences." in result.output
    with samples.app_context():
        assert reconcile.report(get_deps().index).total == 0
        assert set(get_deps().index.document_point_ids(999)) == set()


def test_in_flight_documents_are_left_alone(samples):
    with samples.app_context():
        doc = db.session.query(Document).first()
        doc.status = "processing"
        db.session.commit()
        drift = reconcile.report(get_deps().index)
        assert drift.total == 0 and drift.orphan_points == []


def test_reindex_rebuilds_from_sql(samples, runner):
    with samples.app_context():
        index = get_deps().index
        index.client.delete(index.alias, points_selector=list(chunk_ids()), wait=True)
        assert index.count() == 0
    result = runner.invoke(args=["wwhd", "reindex", "--namespace", "money"])
    assert result.exit_code == 0, result.output
    with samples.app_context():
        points = {pid for pid, _ in get_deps().index.iter_points(False)}
        assert points == chunk_ids("money") and points
    assert runner.invoke(args=["wwhd", "reindex"]).exit_code != 0
    assert runner.invoke(args=["wwhd", "reindex", "--namespace", "nope"]).exit_code != 0
    result = runner.invoke(args=["wwhd", "reindex", "--all"])
    assert result.exit_code == 0, result.output
    with samples.app_context():
        assert reconcile.report(get_deps().index).total == 0


def test_heal_rebuilds_an_emptied_index(samples):
    with samples.app_context():
        index = get_deps().index
        index.client.delete(index.alias, points_selector=list(chunk_ids()), wait=True)
        health = reconcile.heal(index)
        assert health.behind and health.points_written == len(chunk_ids())
        assert index.count() == len(chunk_ids())
        assert not reconcile.heal(index).drifted
        assert reconcile.report(index).total == 0


class HashEmbedder:
    """A deterministic local embedder standing in for a newly configured embedding model."""

    name = "hash-embed-v2"

    def embed(self, texts: list[str]) -> tuple[list[list[float]], Usage]:
        vectors = [[b / 255 for b in hashlib.sha256(t.encode()).digest()[:16]] for t in texts]
        return vectors, Usage(model=self.name, prompt_tokens=len(texts), kind="embedding")


def test_embedding_model_change_swaps_alias_and_old_collection_is_dropped(samples):
    with samples.app_context():
        old = get_deps().index
        before = old.current_collection()
        new = KnowledgeIndex(old.client, old.alias, HashEmbedder(), local=True)
        assert new.ensure() is True  # a new, empty collection behind the alias: no dimension clash
        assert new.current_collection() == "wwhd_chunks__hash-embed-v2-16" != before
        counts = reconcile.reindex(new)
        assert counts["chunks"] == len(chunk_ids()) and new.count() == counts["chunks"]
        found = new.search("envelope savings", None, 5)
        assert found.hits and found.dense and any(h.dense_score is not None for h in found.hits)

        drift = reconcile.report(new)
        assert drift.old_collections == [before] and drift.total == 1
        reconcile.repair(new)
        assert reconcile.report(new).total == 0
        assert not new.client.collection_exists(before)


class Statements:
    """Every SQL statement the engine runs while active (a SQLAlchemy event listener)."""

    def __init__(self, engine):
        self.engine, self.seen = engine, []

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        self.seen.append(" ".join(statement.split()).lower())

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._record)


def test_reconcile_and_reindex_read_pages_without_document_text(samples, runner):
    """Issue 14: joining documents.content to every chunk row and sorting needed a ~285 GB temp
    sort at 50k chunks. Chunk reads must be keyset pages that never select document text."""
    with samples.app_context():
        engine = db.engine
        index = get_deps().index
        ids = sorted(chunk_ids())
        index.delete_points(ids[:3])  # some drift, so repair writes
    with Statements(engine) as sql:
        with samples.app_context():
            reconcile.report(get_deps().index, page=7)
            drift = reconcile.repair(get_deps().index, page=7)
            assert drift.missing == 3
        assert runner.invoke(args=["wwhd", "reindex", "--all"]).exit_code == 0
        assert runner.invoke(args=["wwhd", "reconcile"]).exit_code == 0
    # Statements that read chunk columns (the select list, before the first FROM, names them).
    chunk_reads = [
        s for s in sql.seen if s.startswith("select") and "chunks." in s.split(" from ", 1)[0]
    ]
    assert chunk_reads
    for statement in chunk_reads:
        assert "documents.content" not in statement, statement
        # Whole-table reads are keyset pages; the rest look up one page's ids or count rows.
        assert " limit " in statement or " in (" in statement or "count(" in statement, statement
    with samples.app_context():
        pages = len(ids) // 7
        assert pages > 3  # the small page size really made several pages
        assert reconcile.report(get_deps().index).total == 0
