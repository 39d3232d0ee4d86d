"""Which timed line of a passage says the answer: semantic similarity of the question to each
line, judged on the line itself and on the lines around it."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..knowledge import point_marks
from .settings import RetrievalSettings


@dataclass(frozen=True)
class Moment:
    second: float | None
    offset: int  # where the line starts in the passage text
    score: float  # similarity of the line (with context) to the question; 0 when untimed


def lines_of(text: str, marks: list) -> list[tuple[int, float, str]]:
    """(offset, second, text) of each timed line of a chunk, in order."""
    out = []
    for i, (offset, second) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else len(text)
        out.append((int(offset), float(second), text[int(offset) : int(end)]))
    return out


class MomentFinder:
    """Line vectors are cached per chunk: the same chunks answer many questions."""

    def __init__(self, embedder, settings: RetrievalSettings, cache_size: int = 2048):
        self.embedder = embedder
        self.settings = settings
        self._cache: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _vectors(self, chunk_id: str, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            cached = self._cache.get(chunk_id)
            if cached is not None:
                self._cache.move_to_end(chunk_id)
                return cached
        n, before, after = len(lines), 1, self.settings.context_lines
        contexts = [" ".join(lines[max(0, i - before) : i + after + 1]) for i in range(n)]
        vectors = _unit(np.asarray(self.embedder.embed_array(lines + contexts), dtype=np.float32))
        pair = (vectors[:n], vectors[n:])
        with self._lock:
            self._cache[chunk_id] = pair
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return pair

    def query_vector(self, query: str) -> np.ndarray:
        """The question in the moment model's space (the local model, whatever the index uses)."""
        return _unit(np.asarray(self.embedder.embed_array([query]), dtype=np.float32))[0]

    def find(self, chunk_id: str, payload: dict, q: np.ndarray) -> Moment:
        marks = point_marks.pairs(payload.get("marks"))
        start = payload.get("start_s")
        if len(marks) < 2:
            return Moment(start, 0, 0.0)
        lines = lines_of(payload.get("text", ""), marks)
        own, context = self._vectors(chunk_id, [text for _, _, text in lines])
        scores = own @ q + self.settings.context_weight * (context @ q)
        best = int(np.argmax(scores))  # argmax keeps the earliest line on a tie
        offset, second, _ = lines[best]
        return Moment(second, offset, float(scores[best]))

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
