"""In-process cosine search that answers dense queries for embedded Qdrant.

Qdrant's local mode filters point by point in Python: a namespace-filtered dense query over 10k
chunks took ~550 ms here (bench/retrieval.py), unfiltered ~30 ms. One numpy matrix product over
unit vectors is ~1 ms. Like SparsePostings, Qdrant stays the store: this is rebuilt from it at
start and follows every write; tests/knowledge/test_local_dense.py proves it returns Qdrant's
scores and order.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class DenseMatrix:
    def __init__(self, dim: int = 0) -> None:
        self._dim = dim
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._ids: list[str | None] = []
        self._slot_of: dict[str, int] = {}
        self._namespace = np.zeros(0, dtype=np.int32)
        self._document = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self._codes: dict[str, int] = {}
        self._size = 0

    def __len__(self) -> int:
        return len(self._slot_of)

    def _grow(self, need: int, dim: int) -> None:
        if not self._dim:
            self._dim = dim
            self._vectors = np.zeros((0, dim), dtype=np.float32)
        capacity = len(self._vectors)
        if need <= capacity:
            return
        new = max(need, capacity * 2, 1024)
        self._vectors = np.resize(self._vectors, (new, self._dim))
        self._namespace = np.resize(self._namespace, new)
        self._document = np.resize(self._document, new)
        alive = np.zeros(new, dtype=bool)
        alive[:capacity] = self._alive[:capacity]
        self._alive = alive

    def add(self, point_id: str, vector, namespace: str, document_id: int) -> None:
        self.remove(point_id)
        v = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(v))
        self._grow(self._size + 1, v.shape[0])
        slot = self._size
        self._size += 1
        self._vectors[slot] = v / norm if norm else v
        self._namespace[slot] = self._codes.setdefault(namespace or "", len(self._codes))
        self._document[slot] = int(document_id or 0)
        self._alive[slot] = True
        self._ids.append(point_id)
        self._slot_of[point_id] = slot

    def remove(self, point_id: str) -> None:
        slot = self._slot_of.pop(point_id, None)
        if slot is not None:
            self._alive[slot] = False
            self._ids[slot] = None
            if self._size > 1024 and len(self._slot_of) < self._size // 2:
                self._compact()

    def remove_document(self, document_id: int) -> None:
        for slot in np.flatnonzero(
            self._alive[: self._size] & (self._document[: self._size] == document_id)
        ):
            self.remove(self._ids[slot])

    def set_namespace(self, document_id: int, namespace: str) -> None:
        code = self._codes.setdefault(namespace or "", len(self._codes))
        self._namespace[: self._size][self._document[: self._size] == document_id] = code

    def clear(self) -> None:
        self.__init__(self._dim)

    def _compact(self) -> None:
        live = np.flatnonzero(self._alive[: self._size])
        ids = [self._ids[s] for s in live]
        self._vectors = self._vectors[live].copy()
        self._namespace = self._namespace[live].copy()
        self._document = self._document[live].copy()
        self._alive = np.ones(len(live), dtype=bool)
        self._ids = ids
        self._slot_of = {pid: i for i, pid in enumerate(ids)}
        self._size = len(live)

    def search(
        self, query, namespaces: Iterable[str] | None, limit: int
    ) -> list[tuple[str, float]]:
        """(point id, cosine) best first, as Qdrant's cosine distance scores them."""
        if not self._slot_of:
            return []
        q = np.asarray(query, dtype=np.float32)
        norm = float(np.linalg.norm(q))
        if norm:
            q = q / norm
        n = self._size
        scores = self._vectors[:n] @ q
        mask = self._alive[:n].copy()
        if namespaces is not None:
            allowed = [self._codes[name] for name in namespaces if name in self._codes]
            mask &= np.isin(self._namespace[:n], allowed)
        candidates = np.flatnonzero(mask)
        if candidates.size == 0:
            return []
        if candidates.size > limit:
            candidates = candidates[np.argpartition(-scores[candidates], limit - 1)[:limit]]
        top = candidates[np.argsort(-scores[candidates], kind="stable")]
        return [(self._ids[slot], float(scores[slot])) for slot in top]
