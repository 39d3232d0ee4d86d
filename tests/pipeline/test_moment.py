"""A citation points at the timed line whose meaning is closest to the question."""

import numpy as np

from wwhd.links import citation_timestamp, deep_link
from wwhd.providers.local_embed import LocalEmbedder
from wwhd.retrieval.moments import MomentFinder, lines_of
from wwhd.retrieval.settings import RetrievalSettings


def payload(lines):
    text, marks = "", []
    for second, line in lines:
        marks.append([len(text) + (1 if text else 0), second])
        text = f"{text} {line}" if text else line
    return {
        "text": text,
        "marks": marks,
        "start_s": lines[0][0],
        "youtube_url": "https://youtu.be/abcDEF12345",
    }


LINES = [
    (600.0, "We talked about the weather and the long drive over the hills."),
    (630.0, "Then my uncle told a long story about fishing on the lake."),
    (725.0, "Saving a little from every paycheck is how you build a cushion for bad months."),
    (760.0, "After that we all had lunch in the garden."),
]


def finder(**settings):
    return MomentFinder(LocalEmbedder(), RetrievalSettings(**settings))


def test_lines_of_cuts_the_text_at_each_mark():
    p = payload(LINES[:2])
    assert [(second, text.strip()) for _, second, text in lines_of(p["text"], p["marks"])] == [
        (600.0, LINES[0][1]),
        (630.0, LINES[1][1]),
    ]


def test_the_line_that_means_the_question_wins_without_sharing_its_words():
    f = finder(context_lines=0, context_weight=0.0)
    p = payload(LINES)
    q = f.query_vector("how should I put money aside from my salary")
    moment = f.find("chunk-1", p, q)
    assert moment.second == 725.0 and moment.offset == p["marks"][2][0]
    assert deep_link({**p, "start_s": moment.second}).endswith("v=abcDEF12345&t=725s")
    assert citation_timestamp(moment.second) == "00:12:05"


def test_untimed_or_single_line_passages_keep_their_start():
    f = finder()
    q = f.query_vector("anything")
    assert f.find("a", {"text": "x", "marks": [], "start_s": 42.0}, q).second == 42.0
    assert f.find("b", payload(LINES[:1]), q).second == 600.0


def test_line_vectors_are_cached_per_chunk():
    f = finder()
    p = payload(LINES)
    q = f.query_vector("fishing story")
    calls = []
    real = f.embedder.embed_array
    f.embedder.embed_array = lambda texts: calls.append(len(texts)) or real(texts)
    first = f.find("same", p, q)
    again = f.find("same", p, q)
    assert first == again and calls == [2 * len(LINES)]
    assert np.isclose(first.score, again.score)
