"""sparse.term_set: the cached distinct terms of a text, used by coverage on every passage check."""

from wwhd.knowledge import sparse
from wwhd.knowledge.sparse import analyze_query, coverage, term_set, tokenize

PASSAGE = (
    "When your partner won't talk after an argument, don't chase them. Sit down together later, "
    "breathe, and say what you felt without blame. Cafe\u2019s owners argue about money too."
)


def test_term_set_is_the_set_of_tokens():
    assert term_set(PASSAGE) == frozenset(tokenize(PASSAGE))
    assert isinstance(term_set(PASSAGE), frozenset)
    assert term_set("") == frozenset()


def test_coverage_tokenizes_a_passage_once(monkeypatch):
    calls = []
    real = sparse.tokenize

    def counting(text):
        calls.append(text)
        return real(text)

    monkeypatch.setattr(sparse, "tokenize", counting)
    text = PASSAGE + " (a text no other test has cached)"
    ideas = analyze_query("my partner and I argue about money")
    calls.clear()
    first = coverage(ideas, text)
    for _ in range(5):
        assert coverage(ideas, text) == first
    assert calls.count(text) == 1
    assert 0 < first <= 1
