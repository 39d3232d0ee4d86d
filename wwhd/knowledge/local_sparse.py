"""In-process BM25 postings that answer sparse queries for embedded Qdrant.

Qdrant's local mode scores sparse vectors point by point in Python (~70 µs per chunk per
query: 0.8 s at 10k chunks). A Qdrant server uses an inverted index; this is the same idea for
the embedded default, so a laptop KB of tens of thousands of chunks answers in milliseconds.
Qdrant stays the store: these postings are rebuilt from it at start and follow every write.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


class SparsePostings:
    def __init__(self) -> None:
        self._ids: list[str | None] = []  # slot → point id (None once removed)
        self._terms: list[tuple[int, ...]] = []  # slot → its term indices (to undo df on removal)
        self._namespace: list[int] = []  # slot → namespace code
        self._document: list[int] = []  # slot → document id
        self._slot_of: dict[str, int] = {}
        self._codes: dict[str, int] = {}
        self._postings: dict[int, tuple[list[int], list[float]]] = {}
        self._df: dict[int, int] = {}
        self._frozen: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._alive = np.zeros(0, dtype=bool)
        self._ns_array = np.zeros(0, dtype=np.int32)
        self._dirty = True

    def __len__(self) -> int:
        return len(self._slot_of)

    def _code(self, namespace: str) -> int:
        return self._codes.setdefault(namespace, len(self._codes))

    def add(
        self,
        point_id: str,
        indices: list[int],
        values: list[float],
        namespace: str,
        document_id: int,
    ) -> None:
        self.remove(point_id)
        slot = len(self._ids)
        self._ids.append(point_id)
        self._terms.append(tuple(indices))
        self._namespace.append(self._code(namespace or ""))
        self._document.append(int(document_id or 0))
        self._slot_of[point_id] = slot
        for term, weight in zip(indices, values):
            slots, weights = self._postings.setdefault(term, ([], []))
            slots.append(slot)
            weights.append(float(weight))
            self._df[term] = self._df.get(term, 0) + 1
            self._frozen.pop(term, None)
        self._dirty = True

    def remove(self, point_id: str) -> None:
        slot = self._slot_of.pop(point_id, None)
        if slot is None:
            return
        self._ids[slot] = None
        for term in self._terms[slot]:
            self._df[term] -= 1
        self._dirty = True
        if len(self._ids) > 1024 and len(self._slot_of) < len(self._ids) // 2:
            self._compact()

    def document_ids(self, document_id: int) -> set[str]:
        """Ids of the document's points (a scan of one list: ~3 ms at 50k points)."""
        return {
            point_id
            for point_id, doc in zip(self._ids, self._document)
            if doc == document_id and point_id is not None
        }

    def remove_document(self, document_id: int) -> None:
        doomed = [
            self._ids[slot]
            for slot, doc in enumerate(self._document)
            if doc == document_id and self._ids[slot] is not None
        ]
        for point_id in doomed:
            self.remove(point_id)

    def set_namespace(self, document_id: int, namespace: str) -> None:
        code = self._code(namespace)
        for slot, doc in enumerate(self._document):
            if doc == document_id:
                self._namespace[slot] = code
        self._dirty = True

    def clear(self) -> None:
        self.__init__()

    def _compact(self) -> None:
        """Drop removed slots so postings stop growing under edits."""
        live = [(self._ids[s], s) for s in range(len(self._ids)) if self._ids[s] is not None]
        old = (self._terms, self._namespace, self._document, self._postings)
        codes = {code: name for name, code in self._codes.items()}
        vectors: dict[int, dict[int, float]] = {}
        for term, (slots, weights) in old[3].items():
            for slot, weight in zip(slots, weights):
                if self._ids[slot] is not None:
                    vectors.setdefault(slot, {})[term] = weight
        self.clear()
        for point_id, slot in live:
            vector = vectors.get(slot, {})
            self.add(
                point_id, list(vector), list(vector.values()), codes[old[1][slot]], old[2][slot]
            )

    def _refresh(self) -> None:
        if self._dirty:
            self._alive = np.fromiter(
                (i is not None for i in self._ids), dtype=bool, count=len(self._ids)
            )
            self._ns_array = np.asarray(self._namespace, dtype=np.int32)
            self._dirty = False

    def _arrays(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        frozen = self._frozen.get(term)
        if frozen is None:
            slots, weights = self._postings[term]
            frozen = self._frozen[term] = (
                np.asarray(slots, dtype=np.int64),
                np.asarray(weights, dtype=np.float32),
            )
        return frozen

    def document_frequency(self, indices: Iterable[int]) -> tuple[dict[int, int], int]:
        """({term: number of live points holding it}, number of live points)."""
        return {term: self._df.get(term, 0) for term in indices}, len(self._slot_of)

    def search(
        self, indices: list[int], values: list[float], namespaces: Iterable[str] | None, limit: int
    ) -> list[tuple[str, float]]:
        """(point id, score) best first, scored like Qdrant's IDF modifier: Σ idf·q·d."""
        self._refresh()
        total = len(self._slot_of)
        if not total:
            return []
        scores = np.zeros(len(self._ids), dtype=np.float32)
        for term, q in zip(indices, values):
            df = self._df.get(term, 0)
            if df <= 0:
                continue
            idf = math.log(1.0 + (total - df + 0.5) / (df + 0.5))
            slots, weights = self._arrays(term)
            scores[slots] += np.float32(idf * q) * weights
        mask = self._alive & (scores > 0)
        if namespaces is not None:
            allowed = [self._codes[n] for n in namespaces if n in self._codes]
            mask &= np.isin(self._ns_array, allowed)
        candidates = np.flatnonzero(mask)
        if candidates.size == 0:
            return []
        if candidates.size > limit:
            top = candidates[np.argpartition(-scores[candidates], limit - 1)[:limit]]
        else:
            top = candidates
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self._ids[slot], float(scores[slot])) for slot in top]
