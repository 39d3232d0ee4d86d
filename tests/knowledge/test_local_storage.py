"""Embedded Qdrant's streaming load returns what the library's own load does, and a reopened
index answers searches exactly as before the reopen."""

from __future__ import annotations

import pickle
import shutil
import uuid

import numpy as np
import pytest

from wwhd.knowledge import local_storage
from wwhd.knowledge.index import KnowledgeIndex, make_client
from wwhd.providers.local_embed import LocalEmbedder

TEXTS = [
    "breathe slowly and keep the shoulders soft",
    "save a little every week before you spend",
    "the customer remembers how you treated them",
    "walk in the morning when the orchard is quiet",
]


def _index(path) -> KnowledgeIndex:
    return KnowledgeIndex(make_client(path=str(path)), "kb", LocalEmbedder(), local=True)


def _fill(path) -> None:
    index = _index(path)
    index.upsert(
        [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, str(n))),
                "text": TEXTS[n % 4] + f" {n}",
                "payload": {"document_id": 1 + n % 3, "namespace": "general", "text": TEXTS[n % 4]},
            }
            for n in range(40)
        ]
    )
    index.client.close()


def test_streaming_load_equals_the_library_load(tmp_path):
    _fill(tmp_path)
    writer = next(iter((tmp_path / "collection").iterdir()))
    from qdrant_client.local.persistence import CollectionPersistence

    storage = CollectionPersistence(str(writer))
    # An outdated copy of one point (an older qdrant-client's spelling): both loads drop it.
    key, blob = storage.storage.execute("SELECT id, point FROM points LIMIT 1").fetchone()
    older = pickle.loads(blob)
    older.payload = {"document_id": 99}
    # Written first (lower rowid) under another key: the later row, the real point, must win.
    storage.storage.execute("UPDATE points SET id = ? WHERE id = ?", (key + "new", key))
    storage.storage.execute(
        "INSERT INTO points (id, point) VALUES (?, ?)", (key, pickle.dumps(older))
    )
    storage.storage.execute(
        "UPDATE points SET rowid = (SELECT max(rowid) + 1 FROM points) WHERE id = ?", (key + "new",)
    )
    storage.storage.commit()
    storage.close()
    copy = tmp_path / "copy"
    shutil.copytree(writer, copy)
    with pytest.warns(UserWarning, match="outdated"):
        theirs = list(local_storage._ORIGINAL_LOAD(CollectionPersistence(str(writer))))
    storage = CollectionPersistence(str(copy))
    with pytest.warns(UserWarning, match="outdated"):
        ours = list(local_storage.streaming_load(storage))
    assert all(p.payload.get("document_id") != 99 for p in ours)
    assert len(ours) == len(theirs) == 40
    for mine, other in zip(ours, theirs):
        assert mine.id == other.id and mine.payload == other.payload
        assert isinstance(mine.vector["dense"], np.ndarray)
        assert mine.vector["dense"].dtype == np.float32
        np.testing.assert_array_equal(
            mine.vector["dense"], np.asarray(other.vector["dense"], dtype=np.float32)
        )
        assert mine.vector["bm25"] == other.vector["bm25"]
    storage.close()


def test_a_reopened_index_searches_exactly_as_before(tmp_path):
    _fill(tmp_path)
    before = _index(tmp_path)
    queries = ["how do I breathe", "saving money each week", "customers"]
    expected = []
    for q in queries:
        found = before.search(q, ["general"], limit=10)
        expected.append(([h.chunk_id for h in found.hits], found.dense, found.sparse))
    # Qdrant's own dense scoring over the loaded (float32) matrix agrees with ours.
    own = before.client.query_points(
        before.alias, query=LocalEmbedder().embed([queries[0]])[0][0], using="dense", limit=10
    ).points
    assert {str(p.id): round(p.score, 5) for p in own} == {
        k: round(v, 5) for k, v in expected[0][1].items()
    }
    before.client.close()
    after = _index(tmp_path)
    for q, (ids, dense, sparse_scores) in zip(queries, expected):
        found = after.search(q, ["general"], limit=10)
        assert [h.chunk_id for h in found.hits] == ids
        assert found.dense == dense and found.sparse == sparse_scores
    after.client.close()
