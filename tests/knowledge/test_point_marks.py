"""Points store a chunk's timed-line marks flat (knowledge/point_marks.py), and the moment a
citation links to is the same whether a point holds them flat or, written earlier, as pairs."""

from __future__ import annotations

import uuid

from wwhd.knowledge import point_marks
from wwhd.knowledge.index import KnowledgeIndex, make_client
from wwhd.providers.local_embed import LocalEmbedder
from wwhd.retrieval.moments import MomentFinder
from wwhd.retrieval.settings import RetrievalSettings

LINES = [
    (600.0, "We talked about the weather and the long drive over the hills."),
    (630.0, "Then my uncle told a long story about fishing on the lake."),
    (725.0, "Saving a little from every paycheck is how you build a cushion for bad months."),
    (760.0, "After that we all had lunch in the garden."),
]


def _chunk() -> dict:
    text, marks = "", []
    for second, line in LINES:
        marks.append([len(text) + (1 if text else 0), second])
        text = f"{text} {line}" if text else line
    payload = {"document_id": 1, "namespace": "money", "text": text, "marks": marks}
    return {"id": str(uuid.uuid4()), "text": text, "payload": payload, "start_s": 600.0}


def test_flat_and_pairs_round_trip():
    marks = [(0, 600.0), (63, 630.0), (122, 725.0)]
    assert point_marks.flat(marks) == [0, 600.0, 63, 630.0, 122, 725.0]
    assert point_marks.pairs(point_marks.flat(marks)) == marks
    assert point_marks.pairs([list(m) for m in marks]) == marks  # points written before
    assert point_marks.flat(point_marks.flat(marks)) == point_marks.flat(marks)
    assert point_marks.pairs(None) == point_marks.pairs([]) == point_marks.flat(None) == []


def test_points_hold_marks_flat_and_cite_the_same_moment():
    chunk = _chunk()
    pairs_before = [list(m) for m in chunk["payload"]["marks"]]
    embedder = LocalEmbedder()
    index = KnowledgeIndex(make_client(path=":memory:"), "kb", embedder, local=True)
    try:
        index.upsert([chunk])
        assert chunk["payload"]["marks"] == pairs_before  # the caller's payload is untouched
        stored = index.retrieve_payloads([chunk["id"]])[chunk["id"]]
        assert stored["marks"] == [value for pair in pairs_before for value in pair]
        finder = MomentFinder(embedder, RetrievalSettings())
        q = finder.query_vector("how should I put money aside from my salary")
        from_flat = finder.find("flat", stored, q)
        from_pairs = finder.find("pairs", {**stored, "marks": pairs_before}, q)
        assert from_flat == from_pairs and from_flat.second == 725.0
    finally:
        index.client.close()
