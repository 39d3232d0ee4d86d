"""Local mode builds its postings on the first search, not on open: commands that never search
(reconcile, reindex, the ingest CLI) do not hold a second copy of every vector, and searches
after a lazy build answer as if the postings had followed every write."""

from __future__ import annotations

import uuid

from wwhd.knowledge.index import KnowledgeIndex, make_client

WORDS = "money envelope budget wife argue kettle patience breath meditation stance".split()


def chunks(n: int, document_offset: int = 0) -> list[dict]:
    out = []
    for i in range(n):
        text = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(3 + i % 5))
        doc = document_offset + i // 10
        out.append(
            {
                "id": str(uuid.UUID(int=document_offset * 1000 + i + 1)),
                "text": text,
                "payload": {"namespace": "general", "document_id": doc, "text": text},
            }
        )
    return out


def ranked(index: KnowledgeIndex, query: str) -> list[tuple[str, float]]:
    # Raw BM25 scores, sorted: equal scores may come in slot order, which a rebuild changes.
    return sorted((pid, round(s, 6)) for pid, s in index.search(query, None, 50).sparse.items())


def test_writes_without_a_search_build_nothing(tmp_path):
    index = KnowledgeIndex(make_client(path=str(tmp_path / "q")), "t", None, local=True)
    index.ensure()
    index.upsert(chunks(60))
    index.delete_points([chunks(60)[0]["id"]])
    assert len(index._postings) == 0  # nothing held beyond Qdrant's own copy
    assert index.count() == 59


def test_lazy_build_answers_like_one_that_followed_every_write():
    eager = KnowledgeIndex(make_client(path=":memory:"), "t", None, local=True)
    lazy = KnowledgeIndex(make_client(path=":memory:"), "t", None, local=True)
    eager.prepare_search()
    data = chunks(80)
    for index in (eager, lazy):
        index.upsert(data)
        index.delete_points([c["id"] for c in data[:5]])
        index.delete_document(3)
        index.upsert(data[:2])  # back again
    assert len(eager._postings) == len(data) - 3 - 10
    for query in ("money budget", "patience breath", "stance kettle wife"):
        assert ranked(lazy, query) == ranked(eager, query)
    assert len(lazy._postings) == len(eager._postings)


def test_a_hidden_document_stays_hidden_when_the_postings_are_built_later():
    index = KnowledgeIndex(make_client(path=":memory:"), "t", None, local=True)
    index.upsert(chunks(40))
    index.hide_document(1)  # deleted in SQL; its points not yet removed from Qdrant
    hits = index.search("money budget envelope", None, 50).hits
    assert hits and all(h.payload["document_id"] != 1 for h in hits)
    index.delete_document_in_pages(1)
    assert index.count() == 30
    assert 1 not in index._hidden
