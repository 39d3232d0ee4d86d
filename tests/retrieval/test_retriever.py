"""Retriever end to end on a small real index (embedded Qdrant, packaged model)."""

from __future__ import annotations

import uuid

from wwhd.knowledge.index import KnowledgeIndex, make_client
from wwhd.providers.local_embed import LocalEmbedder
from wwhd.retrieval import Retriever, coverage

TALKS = {
    ("money", 1): [
        (10.0, "Put money aside from every paycheck before you spend anything else."),
        (20.0, "Keep three envelopes: rent, food, and savings for the bad months."),
        (30.0, "When the savings envelope is full, you sleep better at night."),
    ],
    ("meditation", 2): [
        (5.0, "Sit still for one minute and breathe slowly through the nose."),
        (15.0, "When thoughts come, let them pass like clouds and return to the breath."),
        (25.0, "A minute at your desk after lunch is enough to start the habit."),
    ],
}


def build() -> KnowledgeIndex:
    index = KnowledgeIndex(make_client(path=":memory:"), "t", LocalEmbedder(), local=True)
    chunks = []
    for (namespace, doc), lines in TALKS.items():
        text, marks = "", []
        for second, line in lines:
            marks.append([len(text) + (1 if text else 0), second])
            text = f"{text} {line}" if text else line
        payload = {
            "namespace": namespace,
            "document_id": doc,
            "text": text,
            "marks": marks,
            "start_s": lines[0][0],
            "end_s": lines[-1][0],
            "title": namespace,
            "youtube_url": "https://youtu.be/abcDEF12345",
            "chunk_index": 0,
        }
        chunks.append({"id": str(uuid.UUID(int=doc)), "text": text, "payload": payload})
    index.upsert(chunks)
    return index


def test_a_covered_question_gets_the_right_talk_and_line():
    found = Retriever(build()).retrieve("how do I save money from my salary", [])
    assert found.covered and found.passages[0]["document_id"] == 1
    assert found.passages[0]["moment_s"] in (10.0, 20.0, 30.0)
    assert found.evidence.best_cosine > 0.3  # "salary" is unknown here, the meaning is not
    assert found.citations[0]["url"].endswith(f"t={int(found.passages[0]['moment_s'])}s")


def test_talks_are_one_passage_per_document_in_fused_order_and_give_the_namespaces():
    found = Retriever(build()).retrieve("how do I save money from my salary", [])
    documents = [p["document_id"] for p in found.talks]
    assert documents[0] == 1 and len(documents) == len(set(documents))
    assert set(documents) == {p["document_id"] for p in found.passages}
    many_of_one_talk = [found.talks[0]] * 5 + found.talks[1:]
    assert Retriever.namespaces_for(many_of_one_talk, [], False) == Retriever.namespaces_for(
        found.talks, [], False
    )


def test_a_far_off_question_is_not_covered_and_has_no_passages():
    found = Retriever(build()).retrieve("In what year did the Berlin Wall fall?", [])
    assert not found.covered and found.passages == [] and found.talks == []
    assert found.evidence.unknown_share > 0.5


def test_a_hint_with_nothing_on_the_question_lets_every_namespace_compete():
    found = Retriever(build()).retrieve("how do I breathe when I meditate", ["money"], hinted=True)
    assert found.covered and found.passages[0]["document_id"] == 2


def test_gather_reads_term_frequencies_from_the_index():
    index = build()
    result = index.search("envelopes zeppelin", None, 5)
    evidence = coverage.gather(result, index, "envelopes zeppelin")
    # "zeppelin" is in no chunk and rare; "envelopes" is in one of two.
    assert 0.5 < evidence.unknown_share < 1.0
    assert evidence.best_cosine == max(result.dense.values()).__round__(4)
