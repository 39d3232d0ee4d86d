"""sparse.term_set: the cached distinct terms of a text, used by coverage on every passage check."""

from wwhd.knowledge.sparse import query_terms, query_vector, term_index, term_set, tokenize

PASSAGE = (
    "When your partner won't talk after an argument, don't chase them. Sit down together later, "
    "breathe, and say what you felt without blame. Cafe\u2019s owners argue about money too."
)


def test_term_set_is_the_set_of_tokens():
    assert term_set(PASSAGE) == frozenset(tokenize(PASSAGE))
    assert isinstance(term_set(PASSAGE), frozenset)
    assert term_set("") == frozenset()


def test_query_terms_are_distinct_and_weigh_one_each():
    terms = query_terms("Money, money, money: how do I save money?")
    assert terms == ["money", "save"]
    indices, values = query_vector("Money, money, money: how do I save money?")
    assert indices == sorted(term_index(t) for t in terms) and values == [1.0, 1.0]


def test_ascii_text_has_the_same_words_as_the_unicode_pattern_finds():
    import random

    from wwhd.knowledge.sparse import STOP_WORDS, WORD_RE, content_words, fold

    rng = random.Random(8)
    alphabet = [chr(c) for c in range(128)] + list("abc xyz'_019") * 8
    texts = ["rock'n'roll o'clock don't snake_case x2 2x 'quoted' __init__ a_b'c_d"]
    texts += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(3000)
    ]
    for text in texts:
        assert text.isascii()
        expected = tuple(w for w in WORD_RE.findall(fold(text)) if w not in STOP_WORDS)
        assert content_words.__wrapped__(text) == expected
