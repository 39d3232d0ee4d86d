"""Embedded Qdrant (qdrant-client local mode, pinned 1.20) loading its points without the spike.

At start local mode reads its SQLite file with one `fetchall()` (every pickled point in memory at
once: ~4 KB each) and collects every dense vector as a list of Python floats (256 floats, ~8 KB
a point) before stacking them into one float64 matrix. At 50k chunks that was ~1.3 GB of RSS for
a process that then needs a few hundred MB. This load walks the rows with the cursor and hands
each dense vector over as float32, so local mode stacks a float32 matrix directly: same points,
same order, same handling of outdated rows as the library's own `load`
(tests/knowledge/test_local_storage.py compares them).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from qdrant_client._pydantic_compat import construct
from qdrant_client.http import models
from qdrant_client.local import persistence
from qdrant_client.local.utils import normalize_point_id

_ORIGINAL_LOAD = persistence.CollectionPersistence.load


def _dense_as_float32(point: models.PointStruct) -> None:
    vector = point.vector
    if isinstance(vector, dict):
        for name, value in vector.items():
            if isinstance(value, list) and value and not isinstance(value[0], list):
                vector[name] = np.asarray(value, dtype=np.float32)


def streaming_load(self) -> Iterable[models.PointStruct]:
    """CollectionPersistence.load, a row at a time (the highest rowid of a point wins, older
    copies are removed afterwards), with dense vectors as float32 arrays."""
    cursor = self.storage.cursor()
    cursor.execute("SELECT rowid, id, point FROM points ORDER BY rowid DESC")
    self._legacy_keys = {}
    loaded = set()
    outdated = []
    for rowid, key, value in cursor:
        point = persistence.pickle.loads(value)
        point_id = normalize_point_id(point.id)
        if point_id in loaded:
            outdated.append(rowid)
            continue
        loaded.add(point_id)
        if key != self.encode_key(point_id):
            self._legacy_keys[point_id] = key
        if point_id != point.id:
            point = construct(
                models.PointStruct, id=point_id, vector=point.vector, payload=point.payload
            )
        _dense_as_float32(point)
        yield point
    if outdated:
        self._remove_outdated(outdated)


def install() -> None:
    """Use streaming_load for every local collection opened from now on (idempotent)."""
    persistence.CollectionPersistence.load = streaming_load
