"""The local embedder's per-word token cache gives exactly the tokenizer's ids for the whole text."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from wwhd.knowledge.sparse import content_words
from wwhd.providers.local_embed import LocalEmbedder

HOSTILE = [
    "Café’s crème brûlée, naïve façade — déjà vu!",
    "Ünïcödé ﬁ ligatures ＦＵＬＬＷＩＤＴＨ and 数字 1,234.56 and emoji 🙂🙂",
    "won't can't y'all rock'n'roll o'clock 'quoted' words",
    "the and of to",  # only stop words: the raw text is embedded
    "   spaced    out\ttabs\nnew lines   ",
    "x" * 3000,
    "",
]


def _whole(embedder: LocalEmbedder, text: str) -> list[int]:
    """What the old code tokenized: the content words joined by single spaces, in one call."""
    joined = " ".join(content_words(text)) or text
    return embedder._model.tokenizer.encode(joined, add_special_tokens=False).ids


def _texts() -> list[str]:
    rng = random.Random(3)
    texts = list(HOSTILE)
    samples = Path(__file__).resolve().parents[2] / "wwhd" / "samples"
    for path in sorted(samples.glob("*.[mv]*")):
        words = path.read_text(encoding="utf-8").split()
        for _ in range(20):
            start = rng.randrange(max(1, len(words) - 300))
            texts.append(" ".join(words[start : start + rng.randint(1, 300)]))
    return texts


def test_token_ids_equal_the_tokenizer_on_the_whole_text():
    embedder = LocalEmbedder()
    texts = _texts()
    assert len(texts) > 100
    cached = embedder._token_ids(texts)
    assert cached == [_whole(embedder, t) for t in texts]
    # And again from a warm cache (every word now known).
    assert embedder._token_ids(texts) == cached


def test_vectors_equal_the_tokenizer_path_bit_for_bit(monkeypatch):
    embedder = LocalEmbedder()
    texts = _texts()
    got = embedder.embed_array(texts)
    monkeypatch.setattr(embedder, "_token_ids", lambda ts: [_whole(embedder, t) for t in ts])
    np.testing.assert_array_equal(got, embedder.embed_array(texts))
