"""The retrieval policy's small functions: coverage signals, cut-off, de-duplication, ordering."""

import math

import pytest

from wwhd.knowledge.index import Hit, SearchResult
from wwhd.knowledge.sparse import term_index
from wwhd.pipeline import prompts
from wwhd.pipeline.nodes import used_citations
from wwhd.retrieval import coverage, passages
from wwhd.retrieval.coverage import Evidence
from wwhd.retrieval.moments import Moment
from wwhd.retrieval.settings import RetrievalSettings

SETTINGS = RetrievalSettings()


def test_idf_is_bm25s_and_falls_with_document_frequency():
    assert coverage.idf(0, 100) == pytest.approx(math.log(1 + 100.5 / 0.5))
    assert coverage.idf(1, 100) > coverage.idf(50, 100) > coverage.idf(100, 100) > 0


def test_unknown_share_weighs_terms_no_chunk_holds_by_idf():
    freq = {term_index("rent"): 40, term_index("son"): 10}
    assert coverage.unknown_share(["rent", "son"], freq, 100) == 0.0
    share = coverage.unknown_share(["rent", "berlin"], freq, 100)
    # "berlin" (df 0) weighs more than the common "rent", so it is most of the question.
    assert 0.5 < share < 1.0
    assert coverage.unknown_share(["berlin"], freq, 100) == 1.0
    assert coverage.unknown_share([], freq, 100) == 0.0
    assert coverage.unknown_share(["rent"], {}, 0) == 0.0


def test_covered_subtracts_the_unknown_share_from_the_best_cosine():
    s = RetrievalSettings(unknown_penalty=0.4, min_covered_score=0.1)
    assert Evidence(0.3, 5.0, 0.0, True).covered(s)
    assert not Evidence(0.3, 5.0, 0.6, True).covered(s)  # 0.3 - 0.24 < 0.1
    assert not Evidence(0.05, 5.0, 0.0, True).covered(s)
    # Dense off: BM25 found something and most of the question is known.
    assert Evidence(None, 2.0, 0.2, False).covered(s)
    assert not Evidence(None, 0.0, 0.0, False).covered(s)
    assert not Evidence(None, 2.0, 0.8, False).covered(s)


def hit(cid, doc, dense, sparse, start=0.0, **payload):
    return Hit(
        cid,
        0.0,
        {"document_id": doc, "start_s": start, "text": cid, "chunk_index": 0, **payload},
        sparse_score=sparse,
        dense_score=dense,
    )


def result(*hits):
    return SearchResult(
        hits=list(hits),
        dense={h.chunk_id: h.dense_score for h in hits if h.dense_score is not None},
        sparse={h.chunk_id: h.sparse_score for h in hits if h.sparse_score},
    )


def test_kept_is_relative_to_the_best_hit_on_either_side():
    r = result(
        hit("a", 1, 0.60, 10.0),
        hit("b", 2, 0.55, 1.0),  # near on dense
        hit("c", 3, 0.30, 5.0),  # near on BM25 (≥ 45 % of the best)
        hit("d", 4, 0.30, 1.0),  # far on both
    )
    assert [h.chunk_id for h in passages.kept(r, SETTINGS)] == ["a", "b", "c"]


def p(doc, moment, score=0.0, page=None, chunk_index=0):
    return {
        "document_id": doc,
        "moment_s": moment,
        "moment_score": score,
        "page": page,
        "chunk_index": chunk_index,
    }


def test_is_duplicate_same_source_within_the_window_or_the_neighbouring_untimed_chunk():
    chosen = [p(1, 100.0), p(2, None, page=3, chunk_index=4)]
    assert passages.is_duplicate(chosen, p(1, 150.0), 90)
    assert not passages.is_duplicate(chosen, p(1, 200.0), 90)
    assert not passages.is_duplicate(chosen, p(3, 100.0), 90)
    assert passages.is_duplicate(chosen, p(2, None, page=3, chunk_index=5), 90)
    assert not passages.is_duplicate(chosen, p(2, None, page=4, chunk_index=5), 90)


def test_best_said_is_each_documents_highest_moment_the_earliest_on_a_tie():
    a1, b1, a2, a3 = p(1, 10, 0.2), p(2, 500, 0.9), p(1, 400, 0.7), p(1, 700, 0.7)
    leads = passages.best_said([a1, b1, a2, a3])
    assert leads[1] is a2 and leads[2] is b1 and list(leads) == [1, 2]


def test_best_said_weighs_in_the_chunks_cosine_when_asked():
    # a matches by one line in a chunk about something else; b answers in a chunk on the topic.
    a, b = p(1, 10, 0.9), p(1, 400, 0.8)
    a["chunk_cosine"], b["chunk_cosine"] = 0.2, 0.6
    assert passages.said_score(b, 0.5) == pytest.approx(1.1)
    assert passages.best_said([a, b])[1] is a
    assert passages.best_said([a, b], chunk_weight=0.5)[1] is b
    assert passages.said_score(p(2, 0, 0.3), 0.5) == 0.3  # no cosine (BM25-only hit): line only


def test_lead_in_place_moves_the_best_said_passage_to_its_documents_first_place_only():
    a1, b1, a2, c1, b2 = p(1, 10, 0.2), p(2, 500, 0.9), p(1, 400, 0.7), p(3, 0, 0.1), p(2, 9, 0.95)
    out = passages.lead_in_place([a1, b1, a2, c1, b2])
    assert [id(x) for x in out] == [id(x) for x in (a2, a1, b2, b1, c1)]


def test_order_heads_with_the_first_documents_leads_then_keeps_fused_rank():
    a1, a2, a3, b1, c1, d1 = (
        p(1, 10, 0.1),
        p(1, 300, 0.8),
        p(1, 600, 0.2),
        p(2, 0, 0.5),
        p(3, 0, 0.5),
        p(4, 0, 0.5),
    )
    fused = [a1, b1, a2, a3, c1, d1]
    two = passages.order(fused, RetrievalSettings(diverse_leads=2))
    # A's best-said and B's lead first; the rest of A (its next best-said first) ahead of C, D.
    assert [id(x) for x in two] == [id(x) for x in (a2, b1, a3, a1, c1, d1)]
    every = passages.order(fused, RetrievalSettings(diverse_leads=10))
    assert [id(x) for x in every] == [id(x) for x in (a2, b1, c1, d1, a3, a1)]


def test_dedupe_caps_at_max_passages():
    many = [p(doc, 0.0) for doc in range(10)]
    assert len(passages.dedupe(many, RetrievalSettings(max_passages=3))) == 3


def test_passage_links_the_moment_not_the_chunk_start():
    h = hit("c1", 7, 0.5, 1.0, start=600.0, youtube_url="https://youtu.be/abcDEF12345", title="T")
    out = passages.passage(h, Moment(725.0, 120, 0.8))
    assert out["timestamp"] == "00:12:05" and out["url"].endswith("&t=725s")
    assert out["moment_offset"] == 120 and out["start_s"] == 600.0
    cited = passages.to_citation(out, 2)
    assert cited["position"] == 2 and set(cited) == set(passages.CITATION_KEYS) | {"position"}


@pytest.mark.parametrize(
    ("prefix", "final", "verdict"),
    [
        ("", False, None),
        ("NOT_", False, None),
        ("  NOT_COVERED", False, False),
        ("**NOT_COVERED**", False, False),
        ("Not", False, None),
        ("Not covered by much, but", False, True),
        ("Herman says [1]", False, True),
        ("NOT", True, True),
    ],
)
def test_is_answer_waits_until_the_marker_is_ruled_in_or_out(prefix, final, verdict):
    assert prompts.is_answer(prefix, final=final) is verdict


def test_used_citations_keep_only_cited_passages_with_their_number():
    ps = [
        {**p(i, 10.0 * i), "title": f"t{i}", "url": "", "youtube_url": "", "timestamp": ""}
        | {"namespace": "n", "chunk_id": f"c{i}", "score": 0.1}
        for i in (1, 2, 3)
    ]
    cited = used_citations("First [1], then [3] and [9].", ps)
    assert [(c["chunk_id"], c["position"]) for c in cited] == [("c1", 1), ("c3", 3)]
