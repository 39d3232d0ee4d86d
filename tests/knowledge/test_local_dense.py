"""The in-process dense matrix answers exactly what embedded Qdrant's own cosine search answers."""

from __future__ import annotations

import random
import uuid

import pytest
from qdrant_client import models as qm

from wwhd.knowledge.index import DENSE, KnowledgeIndex, make_client
from wwhd.providers.local_embed import LocalEmbedder

WORDS = (
    "money envelope budget wife argue kettle patience breath meditation stance kick bedroom mirror "
    "desk clutter soup rice fasting customer price staff habit morning walk door light plant"
).split()
QUERIES = [
    "how do I budget money with envelopes",
    "my wife and I argue",
    "breath meditation in the morning",
    "zebra quantum",
]


def build(path=":memory:", n: int = 300, seed: int = 3):
    rng = random.Random(seed)
    index = KnowledgeIndex(make_client(path=path), "t", LocalEmbedder(), local=True)
    chunks = []
    for i in range(n):
        text = " ".join(rng.choices(WORDS, k=rng.randint(8, 60)))
        payload = {
            "namespace": rng.choice(["money", "meditation", "general"]),
            "document_id": i // 3,
            "text": text,
        }
        chunks.append({"id": str(uuid.UUID(int=i + 1)), "text": text, "payload": payload})
    index.upsert(chunks)
    return index, chunks


def qdrant_dense(index, query, namespaces=None, limit=10):
    vector = index.embedder.embed([query])[0][0]
    flt = None
    if namespaces:
        flt = qm.Filter(
            must=[qm.FieldCondition(key="namespace", match=qm.MatchAny(any=list(namespaces)))]
        )
    points = index.client.query_points(
        index.alias, query=vector, using=DENSE, query_filter=flt, limit=limit
    ).points
    return [(str(p.id), p.score) for p in points]


def ours(index, query, namespaces=None, limit=10):
    return list(index.search(query, namespaces, limit).dense.items())


def assert_same(a, b):
    assert [pid for pid, _ in a] == [pid for pid, _ in b]
    for (_, x), (_, y) in zip(a, b):
        assert x == pytest.approx(y, abs=1e-5)


@pytest.mark.parametrize("namespaces", [None, ["money", "general"], ["meditation"]])
def test_matches_qdrant_scores_and_order(namespaces):
    index, _ = build()
    for query in QUERIES:
        assert_same(ours(index, query, namespaces), qdrant_dense(index, query, namespaces))


def test_follows_deletes_and_namespace_moves():
    index, chunks = build()
    index.delete_document(3)
    index.delete_points([chunks[100]["id"]])
    index.set_document_payload(10, {"namespace": "meditation"})
    for query in QUERIES:
        for namespaces in (None, ["meditation"]):
            assert_same(ours(index, query, namespaces), qdrant_dense(index, query, namespaces))
    gone = {chunks[i]["id"] for i in (9, 10, 11, 100)}
    assert not gone & {pid for pid, _ in ours(index, "money kettle", None, 300)}


def test_rebuilt_from_qdrant_on_start(tmp_path):
    index, _ = build(path=str(tmp_path / "q"))
    reopened = KnowledgeIndex(index.client, index.alias, index.embedder, local=True)
    for query in QUERIES:
        assert_same(ours(reopened, query), ours(index, query))
    assert len(reopened._dense) == len(index._dense) == 300
