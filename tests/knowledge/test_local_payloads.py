"""Embedded search reads its hits' payloads without local mode's deep copy, and gets exactly what
`retrieve` would return: the same points and fields, deleted points left out."""

from __future__ import annotations

import uuid

import pytest
from qdrant_client.local import local_collection

from wwhd.knowledge.index import KnowledgeIndex, make_client
from wwhd.providers.local_embed import LocalEmbedder

TEXTS = [
    "Put a little of every paycheck aside before you spend any of it.",
    "When your adult son moves back home, charge him a modest rent.",
    "A small kitchen works best when the stove is not facing the door.",
    "Train your knees slowly: the tendons adapt later than the muscles.",
]


def _chunk(i: int, text: str) -> dict:
    payload = {
        "document_id": i + 1,
        "namespace": "general",
        "text": text,
        "title": f"Talk {i}",
        "marks": [[0, 60.0 * i]],
        "start_s": 60.0 * i,
    }
    return {"id": str(uuid.uuid4()), "text": text, "payload": payload}


@pytest.fixture
def index():
    idx = KnowledgeIndex(make_client(path=":memory:"), "kb", LocalEmbedder(), local=True)
    idx.ensure()
    yield idx
    idx.client.close()


def test_payloads_are_what_retrieve_returns_without_deleted_or_unknown_points(index):
    chunks = [_chunk(i, t) for i, t in enumerate(TEXTS)]
    index.upsert(chunks)
    index.delete_document(2)  # the second chunk's document
    ids = [c["id"] for c in chunks] + [str(uuid.uuid4())]
    expected = {
        str(p.id): p.payload for p in index.client.retrieve(index.alias, ids=ids, with_payload=True)
    }
    got = index._stored_payloads(ids)
    assert got == expected
    assert chunks[1]["id"] not in got and len(got) == 3


def test_search_makes_no_deep_copy_of_payloads(index, monkeypatch):
    index.upsert([_chunk(i, t) for i, t in enumerate(TEXTS)])
    index.search("how much rent should my son pay", None, 4)  # builds the in-process mirror

    def no_copy(*args, **kwargs):
        raise AssertionError("local mode deep-copied a payload during search")

    monkeypatch.setattr(local_collection, "deepcopy", no_copy)
    result = index.search("how much rent should my son pay", None, 4)
    assert result.hits and result.hits[0].payload["text"] == TEXTS[1]
