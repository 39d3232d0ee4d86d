"""Embedded Qdrant for the maintenance commands: the folder a page at a time, never all in memory.

qdrant-client's local mode (pinned 1.20) loads every point of every collection into memory when it
opens a folder (payload with the chunk text, sparse and dense vectors: ~330 MB at 50k chunks), and
only then can `reconcile` or `reindex` look at one page. Those commands need ids, payloads and
writes, page by page. `PagedLocalClient` opens the folder with qdrant-client's own `QdrantLocal`
(its lock, meta.json, aliases, collection create/drop: all the library's code) but with its
collections left empty in memory, and answers the few point calls `KnowledgeIndex` makes for those
commands from each collection's SQLite file, a page at a time:

- writes go through the library's own `_validate_point` and `CollectionPersistence.persist`, which
  is exactly what local mode's upsert stores before it applies a point in memory, so a server that
  opens the folder afterwards loads the same points (tests/knowledge/test_local_paged.py);
- reads unpickle the stored rows, keyset by SQLite rowid; filters and payload selectors are the
  library's `check_filter` and `_process_payload`.

Only for a process that owns the folder and never searches: search, vectors and payload updates
are not offered. A folder written by an older qdrant-client (rows under legacy keys, which local
mode rewrites when it loads) is refused with `LegacyStorage`, and the caller opens it the usual way.
"""

from __future__ import annotations

import base64
import pickle
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence

from qdrant_client.conversions.common_types import get_args_subscribed
from qdrant_client.http import models
from qdrant_client.local.local_collection import LocalCollection
from qdrant_client.local.payload_filters import check_filter, validate_filter
from qdrant_client.local.payload_value_extractor import parse_uuid, value_by_key
from qdrant_client.local.persistence import CollectionPersistence
from qdrant_client.local.qdrant_local import QdrantLocal
from qdrant_client.local.utils import normalize_point_id

_OPENING = threading.Lock()  # the class-level load swap below is for one construction at a time
_IN_QUERY = 500  # keys per `IN (...)`: well under SQLite's variable limit


class LegacyStorage(RuntimeError):
    """The folder holds rows under keys an older qdrant-client wrote; open it with QdrantClient."""


def _check_keys(self: CollectionPersistence) -> Iterator:
    """CollectionPersistence.load for a paged open: loads nothing, and notes whether every row's
    key is the canonical key of its point id (then there is one row per point, and persist/delete
    by `encode_key` hit it). Local mode's own load folds legacy rows; a paged open refuses them."""
    self._legacy_keys = {}
    self.legacy_rows = any(
        key != self.encode_key(normalize_point_id(pickle.loads(base64.b64decode(key))))
        for (key,) in self.storage.execute("SELECT id FROM points")
    )
    return iter(())


def _has_vector(point: models.PointStruct) -> dict[str, bool]:
    vector = point.vector
    if isinstance(vector, dict):
        return {name: True for name in vector}
    return {"": vector is not None}


class PagedLocalClient:
    """The `QdrantClient` calls `KnowledgeIndex` makes in reconcile and reindex, over an embedded
    folder whose collections stay on disk. Scroll offsets are SQLite rowids (opaque to callers);
    rows written during a scroll may be visited again, rows deleted during it are not."""

    def __init__(self, path: str):
        with _OPENING:
            loader = CollectionPersistence.load
            CollectionPersistence.load = _check_keys
            try:
                # `_client` as in QdrantClient: KnowledgeIndex batches commits and tunes the
                # SQLite files of `_client.collections`.
                self._client = QdrantLocal(path)
            finally:
                CollectionPersistence.load = loader
        if any(c.storage.legacy_rows for c in self._client.collections.values()):
            self._client.close()
            raise LegacyStorage(f"{path} has rows under keys an older qdrant-client wrote")

    # -- collections and aliases: the library's own code ----------------------------------------
    def get_aliases(self, **kwargs):
        return self._client.get_aliases(**kwargs)

    def get_collections(self, **kwargs):
        return self._client.get_collections(**kwargs)

    def collection_exists(self, collection_name: str, **kwargs) -> bool:
        return self._client.collection_exists(collection_name, **kwargs)

    def create_collection(self, collection_name: str, **kwargs) -> bool:
        return self._client.create_collection(collection_name, **kwargs)

    def update_collection_aliases(self, change_aliases_operations, **kwargs) -> bool:
        return self._client.update_collection_aliases(change_aliases_operations, **kwargs)

    def delete_collection(self, collection_name: str, **kwargs) -> bool:
        return self._client.delete_collection(collection_name, **kwargs)

    def close(self, **kwargs) -> None:
        self._client.close(**kwargs)

    # -- points, a page at a time -------------------------------------------------------------------
    def _collection(self, name: str) -> LocalCollection:
        return self._client._get_collection(name)

    def upsert(self, collection_name: str, points: Sequence[models.PointStruct], **kwargs):
        """Validate every point first (the server rejects a whole request), then store each as
        local mode's upsert does; nothing is kept in memory."""
        collection = self._collection(collection_name)
        validated = [collection._validate_point(point) for point in points]
        for point in validated:
            collection.storage.persist(point)
        return models.UpdateResult(operation_id=0, status=models.UpdateStatus.COMPLETED)

    def delete(self, collection_name: str, points_selector, **kwargs):
        """By ids (PointIdsList) or by filter (FilterSelector: one pass over the rows)."""
        collection = self._collection(collection_name)
        if isinstance(points_selector, models.PointIdsList):
            ids = points_selector.points
        elif isinstance(points_selector, models.FilterSelector):
            ids = [p.id for p in self._matching(collection, points_selector.filter)]
        else:
            raise ValueError(f"unsupported selector: {type(points_selector).__name__}")
        for point_id in ids:
            collection.storage.delete(point_id)
        return models.UpdateResult(operation_id=0, status=models.UpdateStatus.COMPLETED)

    def retrieve(self, collection_name: str, ids, with_payload=True, with_vectors=False, **kwargs):
        _no_vectors(with_vectors)
        collection = self._collection(collection_name)
        storage = collection.storage
        wanted = [normalize_point_id(point_id) for point_id in ids]
        found: dict = {}
        for start in range(0, len(wanted), _IN_QUERY):
            keys = [storage.encode_key(pid) for pid in wanted[start : start + _IN_QUERY]]
            marks = ",".join("?" * len(keys))
            for (value,) in storage.storage.execute(
                f"SELECT point FROM points WHERE id IN ({marks})", keys
            ):
                point = pickle.loads(value)
                found[normalize_point_id(point.id)] = point
        return [_record(found[pid], with_payload) for pid in wanted if pid in found]

    def scroll(
        self,
        collection_name: str,
        scroll_filter: models.Filter | None = None,
        limit: int = 10,
        offset: int | None = None,
        with_payload=True,
        with_vectors=False,
        **kwargs,
    ):
        _no_vectors(with_vectors)
        validate_filter(scroll_filter)
        collection = self._collection(collection_name)
        records = []
        for rowid, point in _rows(collection, after=(offset or 0) - 1):
            if scroll_filter is not None and not _matches(scroll_filter, point):
                continue
            if len(records) == limit:
                return records, rowid  # the next page starts at this row
            records.append(_record(point, with_payload))
        return records, None

    def count(self, collection_name: str, count_filter: models.Filter | None = None, **kwargs):
        collection = self._collection(collection_name)
        if count_filter is None:
            (n,) = collection.storage.storage.execute("SELECT COUNT(*) FROM points").fetchone()
        else:
            n = sum(1 for _ in self._matching(collection, count_filter))
        return models.CountResult(count=n)

    def facet(self, collection_name: str, key: str, facet_filter=None, limit: int = 10, **kwargs):
        """LocalCollection.facet over the stored rows: each (type, value) once per point, by count
        descending then value."""
        value_types = get_args_subscribed(models.FacetValue)
        hits: dict[tuple, int] = defaultdict(int)
        for point in self._matching(self._collection(collection_name), facet_filter):
            values = value_by_key(point.payload or {}, key)
            seen = set()
            for value in values or ():
                if type(value) not in value_types:
                    continue
                as_uuid = parse_uuid(value)
                if as_uuid:
                    value = str(as_uuid)
                seen.add((value_types.index(type(value)), value))
            for item in seen:
                hits[item] += 1
        ranked = sorted(hits.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return models.FacetResponse(
            hits=[models.FacetValueHit(value=value, count=n) for (_, value), n in ranked]
        )

    def _matching(self, collection: LocalCollection, point_filter) -> Iterator[models.PointStruct]:
        validate_filter(point_filter)
        for _, point in _rows(collection):
            if point_filter is None or _matches(point_filter, point):
                yield point


def _no_vectors(with_vectors) -> None:
    # Memory holds dense vectors normalised and as float32; the stored rows do not. The
    # maintenance commands never read vectors, so none are offered rather than different ones.
    if with_vectors:
        raise ValueError("PagedLocalClient does not return vectors")


def _matches(point_filter: models.Filter, point: models.PointStruct) -> bool:
    return check_filter(point_filter, point.payload or {}, point.id, _has_vector(point))


def _record(point: models.PointStruct, with_payload) -> models.Record:
    return models.Record(
        id=normalize_point_id(point.id),
        payload=LocalCollection._process_payload(point.payload or {}, with_payload),
        vector=None,
    )


def _rows(
    collection: LocalCollection, after: int = -1, page: int = 256
) -> Iterator[tuple[int, models.PointStruct]]:
    """(rowid, point) of every stored row from rowid > `after`, read `page` rows per query so no
    cursor stays open across the caller's writes."""
    connection = collection.storage.storage
    while True:
        rows = connection.execute(
            "SELECT rowid, point FROM points WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (after, page),
        ).fetchall()
        for rowid, value in rows:
            yield rowid, pickle.loads(value)
        if len(rows) < page:
            return
        after = rows[-1][0]
