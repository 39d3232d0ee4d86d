"""The embedded default's dense embedder: WordLlama's packaged 256-d `l2_supercat` model.

Why this model: it ships its weights (~16 MB) and tokenizer inside the wheel, needs only numpy and
`tokenizers`, and embeds a 1,500-character chunk in ~0.4 ms and a question in ~0.04 ms on one core
here (bench/retrieval.py), so the no-keys default gets semantic search without a download.
"""

from __future__ import annotations

from functools import cache
from itertools import chain
from pathlib import Path

import numpy as np

from ..knowledge.sparse import content_words as sparse_words
from .base import Usage

MODEL_NAME = "wordllama-l2-supercat-cw"
DIMENSION = 256
WORD_CACHE = 50_000  # distinct words whose token ids are kept (~10 MB at most)
POOL_TOKENS = 1024  # token rows summed at once, ~1 MB of float32 (embed_array says why)


@cache
def _model():
    """Load once per process. WordLlama looks for the tokenizer next to its weights in
    `cache_dir` and would fall back to a Hugging Face download: pointing `cache_dir` at the
    package's own folder and disabling downloads makes the packaged files the only source."""
    import wordllama  # lazy, with numpy (wwhd/lazy.py)
    from wordllama import WordLlama

    package = Path(wordllama.__file__).parent
    model = WordLlama.load("l2_supercat", cache_dir=package, dim=DIMENSION, disable_download=True)
    # Our own pooling below: no padding to the longest text of a batch (a 1,500-character chunk
    # next to a 10-word line would otherwise cost the line the chunk's length).
    model.tokenizer.no_padding()
    return model


def content_words(text: str) -> str:
    """The text without stop words. WordLlama averages token vectors, so in a short line the
    function words ("the", "you", "and") outweigh the words that carry the meaning; dropping them
    is the usual fix for averaged embeddings (the stop words are BM25's general-English list)."""
    return " ".join(sparse_words(text)) or text


class LocalEmbedder:
    """Embedder protocol over WordLlama; vectors are unit length (cosine = dot product)."""

    name = MODEL_NAME
    offline = True

    def __init__(self) -> None:
        self._model = _model()
        self._word_ids: dict[str, tuple[int, ...]] = {}

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text's content words, as the tokenizer gives them for the joined
        words, from a per-word cache. Exact: the tokenizer has no pre-tokenizer, only "▁" for each
        space, and no BPE merge joins a "▁" to the piece before it (the only merges across a "▁"
        join runs of "▁", which single spaces between words never make), so a text's ids are its
        words' ids in order. tests/knowledge/test_embed_words.py checks it against the tokenizer.
        Tokenizing every chunk whole was ~0.5 ms a chunk, most of the embedding's cost."""
        cache = self._word_ids
        word_lists = [sparse_words(t) for t in texts]
        unseen = {w for words in word_lists for w in words if w not in cache}
        if unseen:
            if len(cache) + len(unseen) > WORD_CACHE:
                cache.clear()  # bounded memory; a new vocabulary refills it
                unseen = {w for words in word_lists for w in words}
            words = list(unseen)
            encodings = self._model.tokenizer.encode_batch(words, add_special_tokens=False)
            cache.update(zip(words, (tuple(e.ids) for e in encodings)))
        lookup = cache.__getitem__  # every word of these texts is in the cache now
        out: list[list[int]] = []
        for text, words in zip(texts, word_lists):
            if not words:  # only stop words: the raw text is embedded, as content_words says
                out.append(self._model.tokenizer.encode(text, add_special_tokens=False).ids)
            else:
                out.append(list(chain.from_iterable(map(lookup, words))))
        return out

    def embed_array(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        id_lists = self._token_ids(list(texts))
        table = self._model.embedding
        lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(texts))
        ids = np.fromiter(chain.from_iterable(id_lists), dtype=np.int64, count=int(lengths.sum()))
        np.clip(ids, 0, table.shape[0] - 1, out=ids)
        offsets = np.concatenate(([0], np.cumsum(lengths)))
        out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
        # Texts are summed a group of at most POOL_TOKENS token rows at a time: summing a text's
        # rows of the gathered matrix reads it column by column, which stays in the CPU cache
        # only when the matrix is small (32 chunks at once: 0.31 s for 2,761 chunks; ~1,000 rows
        # at once: 0.17 s), while a call for many short lines stays one group. Each text's sum is
        # computed alone either way, so the vectors are the same bit for bit.
        start = 0
        while start < len(texts):
            stop = int(np.searchsorted(offsets, offsets[start] + POOL_TOKENS, side="right")) - 1
            stop = min(max(stop, start + 1), len(texts))
            first, last = offsets[start], offsets[stop]
            if last > first:
                nonempty = lengths[start:stop] > 0
                rows = out[start:stop]
                rows[nonempty] = np.add.reduceat(
                    table[ids[first:last]], (offsets[start:stop] - first)[nonempty], axis=0
                )
            start = stop
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def embed(self, texts: list[str]) -> tuple[list[list[float]], Usage]:
        # Local embeddings cost nothing: usage carries the model name and zero tokens.
        return self.embed_array(list(texts)).tolist(), Usage(model=self.name, kind="embedding")
