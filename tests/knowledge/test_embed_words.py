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


def _pooled_at_once(embedder: LocalEmbedder, texts: list[str]) -> np.ndarray:
    """The pooling before POOL_TOKENS (2026-12-08): every text of a call summed in one reduceat."""
    id_lists = embedder._token_ids(list(texts))
    lengths = np.fromiter((len(i) for i in id_lists), dtype=np.int64, count=len(texts))
    table = embedder._model.embedding
    ids = np.fromiter(
        (i for row in id_lists for i in row), dtype=np.int64, count=int(lengths.sum())
    )
    np.clip(ids, 0, table.shape[0] - 1, out=ids)
    out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
    nonempty = lengths > 0
    if ids.size:
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[nonempty]
        out[nonempty] = np.add.reduceat(table[ids], starts, axis=0)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


def test_pooling_a_few_texts_at_a_time_gives_the_same_vectors_bit_for_bit():
    from bench.ingestion import transcript
    from wwhd.knowledge.chunking import chunk_sections
    from wwhd.knowledge.parsers import parse_bytes

    embedder = LocalEmbedder()
    chunks = [p.text for p in chunk_sections(parse_bytes(transcript(0.3), "t.vtt").sections)]
    texts = _texts() + chunks
    for size in (32, 7, 1, len(texts)):  # prepare's batches, and odd ones
        for start in range(0, len(texts), size):
            batch = texts[start : start + size]
            np.testing.assert_array_equal(
                embedder.embed_array(batch), _pooled_at_once(embedder, batch)
            )
