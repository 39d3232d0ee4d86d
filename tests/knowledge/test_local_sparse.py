"""The in-process postings answer exactly what embedded Qdrant's own sparse search answers."""

from __future__ import annotations

import random
import uuid

import pytest
from qdrant_client import models as qm

from wwhd.knowledge import sparse
from wwhd.knowledge.index import SPARSE, KnowledgeIndex, make_client

WORDS = (
    "money envelope budget wife argue kettle patience breath meditation stance kick bedroom mirror "
    "desk clutter soup rice fasting customer price staff habit morning walk door light plant"
).split()
QUERIES = [
    "how do I budget money with envelopes",
    "my wife and I argue",
    "where should the mirror and desk go",
    "breath meditation in the morning",
    "customer price for staff",
    "zebra quantum",
]


def build(n: int = 400, seed: int = 7) -> tuple[KnowledgeIndex, list[dict]]:
    rng = random.Random(seed)
    index = KnowledgeIndex(make_client(path=":memory:"), "t", None, local=True)
    chunks = []
    for i in range(n):
        text = " ".join(rng.choices(WORDS, k=rng.randint(20, 120)))
        chunks.append(
            {
                "id": str(uuid.UUID(int=i + 1)),
                "text": text,
                "payload": {
                    "namespace": rng.choice(["money", "meditation", "general"]),
                    "document_id": i // 4,
                    "text": text,
                },
            }
        )
    index.upsert(chunks)
    return index, chunks


def qdrant_sparse(
    index: KnowledgeIndex, query: str, namespaces=None, limit: int = 10
) -> list[tuple[str, float]]:
    indices, values = sparse.query_vector(query)
    flt = None
    if namespaces:
        flt = qm.Filter(
            must=[qm.FieldCondition(key="namespace", match=qm.MatchAny(any=list(namespaces)))]
        )
    result = index.client.query_points(
        index.alias,
        query=qm.SparseVector(indices=indices, values=values),
        using=SPARSE,
        query_filter=flt,
        limit=limit,
    )
    return [(str(p.id), p.score) for p in result.points]


def ours(
    index: KnowledgeIndex, query: str, namespaces=None, limit: int = 10
) -> list[tuple[str, float]]:
    result = index.search(query, namespaces, limit)
    # BM25 alone: the fused order is the BM25 order, and each hit carries its raw score.
    assert [h.chunk_id for h in result.hits] == list(result.sparse)
    return list(result.sparse.items())


def assert_same(a, b):
    assert [pid for pid, _ in a] == [pid for pid, _ in b]
    for (_, x), (_, y) in zip(a, b):
        assert x == pytest.approx(y, rel=1e-4)


@pytest.mark.parametrize("namespaces", [None, ["money", "general"], ["meditation"]])
def test_matches_qdrant_scores_and_order(namespaces):
    index, _ = build()
    for query in QUERIES:
        assert_same(ours(index, query, namespaces), qdrant_sparse(index, query, namespaces))


def test_follows_deletes_edits_and_namespace_moves():
    index, chunks = build()
    index.delete_document(3)
    index.delete_points([chunks[100]["id"], chunks[101]["id"]])
    index.set_document_payload(10, {"namespace": "meditation"})
    index.upsert(
        [
            {
                **chunks[200],
                "text": "kettle kettle kettle patience",
                "payload": {**chunks[200]["payload"], "text": "kettle kettle kettle patience"},
            }
        ]
    )
    for query in QUERIES + ["kettle patience"]:
        for namespaces in (None, ["meditation"]):
            assert_same(ours(index, query, namespaces), qdrant_sparse(index, query, namespaces))
    gone = {chunks[i]["id"] for i in (12, 13, 14, 15, 100, 101)}
    assert not gone & {pid for pid, _ in ours(index, "money envelope wife kettle", None, 400)}


def test_rebuilt_from_qdrant_on_start():
    index, _ = build()
    reopened = KnowledgeIndex(index.client, index.alias, None, local=True)
    for query in QUERIES:
        assert_same(ours(reopened, query), ours(index, query))


def test_many_rewrites_compact_without_changing_answers():
    index, chunks = build(n=300)
    index.prepare_search()  # built now, so the rewrites below go through it
    for _ in range(5):  # rewrite everything: removed slots pile up, then get compacted
        index.upsert(chunks)
    assert len(index._postings) == 300
    for query in QUERIES:
        assert_same(ours(index, query), qdrant_sparse(index, query))
