"""Embedded Qdrant on disk writes an upsert batch in one SQLite commit, and loses nothing."""

from __future__ import annotations

import math
import uuid

from wwhd.knowledge.index import UPSERT_BATCH, KnowledgeIndex, make_client


def _chunks(n: int, document_id: int = 1) -> list[dict]:
    return [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{document_id}-{i}")),
            "text": f"breathe slowly and save a little every week number {i}",
            "payload": {"document_id": document_id, "namespace": "general", "chunk_index": i},
        }
        for i in range(n)
    ]


def _commits(index: KnowledgeIndex) -> list[int]:
    """Count commits on every local-mode SQLite connection (wrapping the connection objects)."""
    counter = [0]
    for writer in index._local_persistences():
        connection = writer.storage

        class Counting:
            def __getattr__(self, name, _c=connection):
                return getattr(_c, name)

            def __enter__(self, _c=connection):
                return _c.__enter__()

            def __exit__(self, *exc, _c=connection):
                counter[0] += 1
                return _c.__exit__(*exc)

            def commit(self, _c=connection):
                counter[0] += 1
                return _c.commit()

        writer.storage = Counting()
    return counter


def test_upsert_commits_once_per_batch_and_survives_a_reopen(tmp_path):
    index = KnowledgeIndex(make_client(path=str(tmp_path)), "kb", local=True)
    index.ensure()
    commits = _commits(index)
    chunks = _chunks(150)
    index.upsert(chunks)
    batches = math.ceil(150 / UPSERT_BATCH)
    assert 1 < batches < 150
    assert commits[0] == batches  # one commit per batch, not one per point
    index.delete_points([c["id"] for c in chunks[:10]])
    assert commits[0] == batches + 1
    index.client.close()

    reopened = KnowledgeIndex(make_client(path=str(tmp_path)), "kb", local=True)
    ids = {pid for page in reopened.scroll_pages(1000) for pid, _ in page}
    assert ids == {c["id"] for c in chunks[10:]}
    reopened.client.close()


def test_a_failed_batch_is_not_committed_and_the_connection_is_restored(tmp_path, monkeypatch):
    index = KnowledgeIndex(make_client(path=str(tmp_path)), "kb", local=True)
    index.upsert(_chunks(5, document_id=1))
    writers = index._local_persistences()
    connections = [w.storage for w in writers]
    local = index.client._client.collections[index.current_collection()]
    real = local._upsert_point
    calls = []

    def fail_on_third(point, **kwargs):
        calls.append(point.id)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(point, **kwargs)

    monkeypatch.setattr(local, "_upsert_point", fail_on_third)
    try:
        index.upsert(_chunks(5, document_id=2))
    except Exception as exc:
        assert "disk full" in str(exc)
    else:
        raise AssertionError("the failing upsert did not raise")
    assert [w.storage for w in writers] == connections  # the real connections are back
    index.client.close()

    reopened = KnowledgeIndex(make_client(path=str(tmp_path)), "kb", local=True)
    on_disk = {p["document_id"] for page in reopened.scroll_pages(1000, True) for _, p in page}
    assert on_disk == {1}  # nothing of the failed batch was committed
    reopened.client.close()
