"""The Qdrant index: one collection behind an alias, hybrid BM25 + dense search, derived from SQL."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.hybrid.fusion import reciprocal_rank_fusion
from qdrant_client.local.qdrant_local import QdrantLocal
from qdrant_client.local.utils import normalize_point_id

from ..offload import cpu_bound, pause
from ..providers.base import Embedder, Usage
from . import sparse
from .errors import IndexUnavailable  # defined there: callers need not import qdrant_client
from .local_dense import DenseMatrix
from .local_sparse import SparsePostings
from .point_marks import compact_payload

log = logging.getLogger(__name__)

SPARSE = "bm25"
DENSE = "dense"
UPSERT_BATCH = 32  # points per embed + write; under gevent one batch holds the loop (~50 ms here)
PAYLOAD_FIELDS = (
    "document_id",
    "namespace",
    "title",
    "source_url",
    "youtube_url",
    "source_platform",
    "start_s",
    "end_s",
    "page",
    "chunk_index",
    "text",
    "checksum",
    "tags",
)


@dataclass
class SearchResult:
    """Fused hits best first, plus what the coverage decision reads: each side's raw scores by
    point id, the query's vector, and embedding usage."""

    hits: list[Hit] = field(default_factory=list)
    dense: dict[str, float] = field(default_factory=dict)
    sparse: dict[str, float] = field(default_factory=dict)
    query_vector: list[float] | None = None
    usage: list[Usage] = field(default_factory=list)


@dataclass
class Hit:
    chunk_id: str
    score: float  # fused (RRF) when dense is on, else BM25
    payload: dict  # read-only: embedded search hands out the stored payload itself
    sparse_score: float = 0.0
    dense_score: float | None = None


def _payloads_in_place(local: QdrantLocal, alias: str, ids: list[str]) -> dict[str, dict]:
    """{id: stored payload} from local mode's collection, as `retrieve` would give them but
    without its deep copy (KnowledgeIndex._stored_payloads says why)."""
    collection = local._get_collection(alias)
    out = {}
    for point_id in ids:
        slot = collection.ids.get(normalize_point_id(point_id))
        if slot is not None and not collection.deleted[slot]:
            out[point_id] = collection._get_payload(slot, True, return_copy=False) or {}
    return out


def make_client(url: str = "", api_key: str = "", path: str = "", paged: bool = False):
    """Server when a URL is given; otherwise embedded local mode on disk (or ':memory:').

    `paged` (maintenance commands that never search): an embedded folder stays on disk and is
    read and written a page at a time (local_paged.py) instead of loaded whole into memory."""
    if url:
        return QdrantClient(url=url, api_key=api_key or None, timeout=10)
    if path == ":memory:":
        return QdrantClient(location=":memory:")
    if paged:
        from .local_paged import LegacyStorage, PagedLocalClient

        try:
            return PagedLocalClient(path)
        except LegacyStorage:
            log.warning("embedded index written by an older qdrant-client: loading it whole")
    from .local_storage import install

    install()  # load the folder a row at a time, float32 (local_storage.py: ~1.3 GB at 50k)
    return QdrantClient(path=path)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class KnowledgeIndex:
    """All Qdrant access. Local mode is not thread-safe, so calls are serialised there."""

    def __init__(
        self,
        client: QdrantClient,
        alias: str,
        embedder: Embedder | None = None,
        embed_dim: int = 0,
        local: bool = True,
    ):
        self.client = client
        self.alias = alias
        self.embedder = embedder
        self._embed_dim = embed_dim
        self._lock = threading.RLock() if local else None
        # Local mode scores and filters point by point in Python; in-process postings (BM25)
        # and a dense matrix answer instead, with Qdrant as the store. They are a second copy of
        # every vector (~+100 MB at 50k chunks), so they are built on the first search, not on
        # open: reconcile, reindex and the ingest CLI never search and never pay for them.
        self._postings = SparsePostings() if local else None
        self._dense = DenseMatrix() if local and embedder else None
        self._mirrored = False  # postings/matrix loaded and kept in step with every write
        self._hidden: set[int] = set()  # deleted documents whose points are still being removed
        self._ready = False

    # -- collection lifecycle -------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        if self.embedder and not self._embed_dim:
            vectors, _ = self.embedder.embed(["dimension probe"])
            self._embed_dim = len(vectors[0])
        return self._embed_dim

    def collection_name(self) -> str:
        """The model and size are in the name, so a model change means a new collection, never a mismatch."""
        if self.embedder:
            return f"{self.alias}__{_slug(self.embedder.name)}-{self.embed_dim}"
        return f"{self.alias}__bm25"

    def _call(self, fn, *args, **kwargs):
        try:
            if self._lock is None:
                return fn(*args, **kwargs)
            with self._lock:
                return fn(*args, **kwargs)
        except IndexUnavailable:
            raise
        except Exception as exc:  # qdrant-client raises transport-specific errors
            raise IndexUnavailable(f"Qdrant error: {type(exc).__name__}: {exc}") from exc

    def current_collection(self) -> str | None:
        aliases = self._call(self.client.get_aliases).aliases
        return next((a.collection_name for a in aliases if a.alias_name == self.alias), None)

    def create_collection(self, name: str) -> None:
        vectors = (
            {DENSE: qm.VectorParams(size=self.embed_dim, distance=qm.Distance.COSINE)}
            if self.embedder
            else {}
        )
        self._call(
            self.client.create_collection,
            name,
            vectors_config=vectors,
            sparse_vectors_config={SPARSE: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
        )
        if self._lock is None:  # payload indexes only matter (and only exist) on a server
            for field, schema in (
                ("namespace", qm.PayloadSchemaType.KEYWORD),
                ("document_id", qm.PayloadSchemaType.INTEGER),
            ):
                self._call(self.client.create_payload_index, name, field, field_schema=schema)

    def point_alias(self, name: str) -> None:
        """Atomically move the alias to `name` (Qdrant applies the delete+create as one change)."""
        ops: list = []
        if self.current_collection():
            ops.append(qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=self.alias)))
        ops.append(
            qm.CreateAliasOperation(
                create_alias=qm.CreateAlias(collection_name=name, alias_name=self.alias)
            )
        )
        self._call(self.client.update_collection_aliases, change_aliases_operations=ops)

    def ensure(self) -> bool:
        """Make sure the alias points at a collection for the configured model.

        Returns True when a new, empty collection was put behind the alias (the caller should
        reindex from SQL); an old collection for another model is kept until reconcile drops it.
        """
        if self._ready:
            return False
        wanted = self.collection_name()
        current = self.current_collection()
        created = False
        if current != wanted:
            exists = self._call(self.client.collection_exists, wanted)
            if not exists:
                self.create_collection(wanted)
                created = True
            self.point_alias(wanted)
            if current:
                log.warning(
                    "embedding model changed: alias moved", extra={"from": current, "to": wanted}
                )
        if self._postings is not None:
            self.tune_local_storage()
        self._ready = True
        return created

    def prepare_search(self) -> None:
        """Build the local postings and dense matrix now (a serving worker at start-up), so the
        first search does not wait for a scan of every point. Nothing to do on a server."""
        self.ensure()
        if self._postings is None or self._mirrored:
            return
        with self._lock:
            if not self._mirrored:
                self._load_postings()
                self._mirrored = True

    def _load_postings(self) -> None:
        self._postings.clear()
        if self._dense is not None:
            self._dense.clear()
        offset = None
        while True:
            points, offset = self._call(
                self.client.scroll,
                self.alias,
                limit=1024,
                offset=offset,
                with_payload=["namespace", "document_id"],
                with_vectors=[SPARSE, DENSE] if self._dense is not None else [SPARSE],
            )
            for point in points:
                payload = point.payload or {}
                if (payload.get("document_id") or 0) in self._hidden:
                    continue
                dense = (point.vector or {}).get(DENSE)
                if dense is not None and self._dense is not None:
                    self._dense.add(
                        str(point.id),
                        dense,
                        payload.get("namespace", ""),
                        payload.get("document_id") or 0,
                    )
                # Every point, even one whose BM25 vector is empty: document_point_ids reads
                # a document's points off the postings.
                vector = (point.vector or {}).get(SPARSE)
                self._postings.add(
                    str(point.id),
                    list(vector.indices) if vector is not None else [],
                    list(vector.values) if vector is not None else [],
                    payload.get("namespace", ""),
                    payload.get("document_id") or 0,
                )
            if offset is None:
                return

    # -- writes -------------------------------------------------------------------------------------
    def upsert(self, chunks: list[dict]) -> list[Usage]:
        """Index chunks given as {"id", "text", "payload"}; embeds in batches. Returns embedding usage."""
        self.ensure()
        usages = []
        for start in range(0, len(chunks), UPSERT_BATCH):
            batch = chunks[start : start + UPSERT_BATCH]
            texts = [c["text"] for c in batch]
            dense: list[list[float]] | None = None
            if self.embedder and getattr(self.embedder, "offline", False):
                # The packaged model is CPU work like BM25: both in one trip to a real thread,
                # off the gevent loop (a remote embedder's HTTP call stays a greenlet's I/O).
                (dense, usage), sparse_vectors = cpu_bound(_local_vectors, self.embedder, texts)
                usages.append(usage)
            else:
                sparse_vectors = cpu_bound(_sparse_vectors, texts)
            usages.extend(self.write_points(batch, sparse_vectors, dense))
        return usages

    def write_points(
        self,
        batch: list[dict],
        sparse_vectors: list[tuple[list[int], list[float]]],
        dense: list[list[float]] | None = None,
    ) -> list[Usage]:
        """Write one batch of chunks ({"id", "text", "payload"}) whose BM25 vectors (and dense
        vectors, when computed elsewhere: a job's child process) are given; a remote embedder is
        called here when `dense` is None. Then yields to other greenlets. Returns embedding usage."""
        self.ensure()
        usages = []
        if dense is None and self.embedder:
            dense, usage = self.embedder.embed([c["text"] for c in batch])
            usages.append(usage)
        points = []
        for i, chunk in enumerate(batch):
            indices, values = sparse_vectors[i]
            vector = {SPARSE: qm.SparseVector(indices=indices, values=values)}
            if dense:
                vector[DENSE] = dense[i]
            # Marks flat: local mode holds every payload in memory (point_marks.py).
            payload = compact_payload(chunk["payload"])
            points.append(qm.PointStruct(id=chunk["id"], vector=vector, payload=payload))
        with self._local_transaction():
            self._call(self.client.upsert, self.alias, points=points, wait=True)
        if self._mirrored and self._dense is not None and dense:
            with self._lock:
                for chunk, vector in zip(batch, dense):
                    self._dense.add(
                        str(chunk["id"]),
                        vector,
                        chunk["payload"].get("namespace", ""),
                        chunk["payload"].get("document_id") or 0,
                    )
        if self._mirrored:
            with self._lock:
                for chunk, (indices, values) in zip(batch, sparse_vectors):
                    self._postings.add(
                        str(chunk["id"]),
                        indices,
                        values,
                        chunk["payload"].get("namespace", ""),
                        chunk["payload"].get("document_id") or 0,
                    )
        _yield()
        return usages

    def delete_document(self, document_id: int) -> None:
        self.ensure()
        selector = qm.FilterSelector(
            filter=qm.Filter(
                must=[qm.FieldCondition(key="document_id", match=qm.MatchValue(value=document_id))]
            )
        )
        self._call(self.client.delete, self.alias, points_selector=selector, wait=True)
        if self._mirrored:
            with self._lock:
                self._postings.remove_document(document_id)
                if self._dense is not None:
                    self._dense.remove_document(document_id)

    def delete_points(self, ids: list[str]) -> None:
        if ids:
            self.ensure()
            with self._local_transaction():
                self._call(
                    self.client.delete,
                    self.alias,
                    points_selector=qm.PointIdsList(points=ids),
                    wait=True,
                )
            if self._mirrored:
                with self._lock:
                    for point_id in ids:
                        self._postings.remove(str(point_id))
                        if self._dense is not None:
                            self._dense.remove(str(point_id))

    def set_document_payload(self, document_id: int, fields: dict) -> None:
        """Overwrite document-level payload fields (title, namespace, urls…) on all of its points."""
        self.ensure()
        selector = qm.FilterSelector(
            filter=qm.Filter(
                must=[qm.FieldCondition(key="document_id", match=qm.MatchValue(value=document_id))]
            )
        )
        self._call(self.client.set_payload, self.alias, payload=fields, points=selector, wait=True)
        if self._mirrored and "namespace" in fields:
            with self._lock:
                self._postings.set_namespace(document_id, fields["namespace"])
                if self._dense is not None:
                    self._dense.set_namespace(document_id, fields["namespace"])

    def other_collections(self) -> list[str]:
        """Collections of this alias family that the alias no longer points at (old embedding models)."""
        current = self.current_collection()
        names = [c.name for c in self._call(self.client.get_collections).collections]
        return sorted(n for n in names if n.startswith(f"{self.alias}__") and n != current)

    def drop_collection(self, name: str) -> None:
        if name == self.current_collection():
            raise ValueError(f"refusing to drop {name!r}: the alias {self.alias!r} points at it")
        self._call(self.client.delete_collection, name)

    # -- reads --------------------------------------------------------------------------------------
    def document_point_ids(self, document_id: int) -> set[str]:
        """The ids of the document's points. Embedded, while the postings mirror every point, read
        off them: local mode's filtered scroll checks the filter against every point of the
        collection on each page (~60 ms per call at 5k points, the last stalls of an ingestion
        job). A hidden (being deleted) document is not in the postings: scrolled."""
        self.ensure()
        if self._mirrored:
            with self._lock:
                if document_id not in self._hidden:
                    return self._postings.document_ids(document_id)
        selector = qm.Filter(
            must=[qm.FieldCondition(key="document_id", match=qm.MatchValue(value=document_id))]
        )
        ids: set[str] = set()
        offset = None
        while True:
            points, offset = self._call(
                self.client.scroll,
                self.alias,
                scroll_filter=selector,
                limit=1024,
                offset=offset,
                with_payload=False,
                with_vectors=False,
            )
            ids.update(str(p.id) for p in points)
            if offset is None:
                return ids
            _yield()

    def count(self) -> int:
        self.ensure()
        return self._call(self.client.count, self.alias, exact=True).count

    def iter_points(self, with_payload: bool | list[str] = True) -> Iterator[tuple[str, dict]]:
        """(id, payload) of every point, for reconcile."""
        self.ensure()
        offset = None
        while True:
            points, offset = self._call(
                self.client.scroll,
                self.alias,
                limit=512,
                offset=offset,
                with_payload=with_payload,
                with_vectors=False,
            )
            for point in points:
                yield str(point.id), point.payload or {}
            if offset is None:
                return

    def search(
        self, query: str, namespaces: Iterable[str] | None = None, limit: int = 20
    ) -> SearchResult:
        """Hybrid search: BM25 and dense rankings fused with reciprocal-rank fusion.

        The fused order comes from Qdrant's Query API (a prefetch per vector, `FusionQuery(RRF)`)
        on a server; embedded, BM25 comes from the in-process postings (local mode scores sparse
        vectors point by point) and the two rankings go through qdrant-client's own RRF function,
        the one its local mode runs for `FusionQuery`. Each side's raw score is kept for the
        coverage decision.
        """
        self.ensure()
        indices, values = sparse.query_vector(query)
        query_filter = None
        if namespaces:
            query_filter = qm.Filter(
                must=[qm.FieldCondition(key="namespace", match=qm.MatchAny(any=list(namespaces)))]
            )
        result = SearchResult()
        dense_query = self._embed_query(query, result)
        sparse_query = qm.SparseVector(indices=indices, values=values) if indices else None
        if dense_query is None and sparse_query is None:
            return result
        if self._postings is not None:
            self.prepare_search()
            self._search_local(sparse_query, dense_query, namespaces, limit, result)
        else:
            self._search_server(sparse_query, dense_query, query_filter, limit, result)
        return result

    def _embed_query(self, query: str, result: SearchResult) -> list[float] | None:
        if not self.embedder:
            return None
        try:
            vectors, usage = self.embedder.embed([query])
        except Exception as exc:  # the embedding provider is down: BM25 alone still answers
            log.warning(
                "query embedding failed; searching BM25 only",
                extra={"error_type": type(exc).__name__},
            )
            return None
        result.usage.append(usage)
        result.query_vector = vectors[0]
        return vectors[0]

    def _search_server(self, sparse_query, dense_query, query_filter, limit, result) -> None:
        prefetch = []
        if sparse_query is not None:
            prefetch.append(
                qm.Prefetch(query=sparse_query, using=SPARSE, filter=query_filter, limit=limit)
            )
        if dense_query is not None:
            prefetch.append(
                qm.Prefetch(query=dense_query, using=DENSE, filter=query_filter, limit=limit)
            )
        # One round trip: the fused ranking plus each prefetch alone for its raw scores.
        requests = [
            qm.QueryRequest(
                prefetch=prefetch,
                query=qm.FusionQuery(fusion=qm.Fusion.RRF),
                limit=limit,
                with_payload=True,
            )
        ] + [
            qm.QueryRequest(query=p.query, using=p.using, filter=query_filter, limit=limit)
            for p in prefetch
        ]
        fused, *sides = self._call(self.client.query_batch_points, self.alias, requests=requests)
        for request, side in zip(requests[1:], sides):
            scores = result.dense if request.using == DENSE else result.sparse
            scores.update({str(p.id): p.score for p in side.points})
        result.hits = [self._hit(str(p.id), p.score, p.payload or {}, result) for p in fused.points]

    def _search_local(self, sparse_query, dense_query, namespaces, limit, result):
        rankings: list[list[qm.ScoredPoint]] = []
        if sparse_query is not None:
            with self._lock:
                ranked = self._postings.search(
                    sparse_query.indices, sparse_query.values, namespaces, limit
                )
            result.sparse.update(ranked)
            rankings.append(
                [qm.ScoredPoint(id=pid, version=0, score=score) for pid, score in ranked]
            )
        if dense_query is not None:
            with self._lock:
                ranked = self._dense.search(dense_query, namespaces, limit)
            result.dense.update(ranked)
            rankings.append(
                [qm.ScoredPoint(id=pid, version=0, score=score) for pid, score in ranked]
            )
        fused = reciprocal_rank_fusion([list(r) for r in rankings if r], limit=limit)
        ids = [str(p.id) for p in fused]
        payloads = self._stored_payloads(ids) if ids else {}
        result.hits = [
            self._hit(pid, p.score, payloads[pid], result)
            for pid, p in zip(ids, fused)
            if pid in payloads
        ]

    def _stored_payloads(self, ids: list[str]) -> dict[str, dict]:
        """{id: payload} of the points that exist, for embedded search's hits.

        Local mode's `retrieve` deep-copies every payload it returns (~0.5 ms of a streamed
        turn's ~13 ms of server CPU for 20 hits of 1,500-character chunks, BENCHMARKS.md §8).
        A hit's payload is only read, so this asks local mode's own collection for the stored
        payloads without the copy (`_get_payload(return_copy=False)`, qdrant-client pinned in
        requirements.txt): the same points and fields as `retrieve`, deleted ones left out
        (tests/knowledge/test_local_payloads.py)."""
        local = getattr(self.client, "_client", None)
        if not isinstance(local, QdrantLocal):
            stored = self._call(self.client.retrieve, self.alias, ids=ids, with_payload=True)
            return {str(p.id): p.payload or {} for p in stored}
        return self._call(_payloads_in_place, local, self.alias, ids)

    @staticmethod
    def _hit(point_id: str, fused: float, payload: dict, result: SearchResult) -> Hit:
        return Hit(
            point_id,
            fused,
            payload,
            sparse_score=result.sparse.get(point_id, 0.0),
            dense_score=result.dense.get(point_id),
        )

    def term_frequencies(self, indices: list[int]) -> tuple[dict[int, int], int]:
        """({term: points holding it}, points in the collection) for the coverage decision.

        Embedded: read off the postings. Server: one batched sparse query per term with limit 1
        tells presence, which is all the decision uses (counted as 1)."""
        self.ensure()
        if not indices:
            return {}, 0
        if self._postings is not None:
            self.prepare_search()
            with self._lock:
                return self._postings.document_frequency(indices)
        requests = [
            qm.QueryRequest(query=qm.SparseVector(indices=[i], values=[1.0]), using=SPARSE, limit=1)
            for i in indices
        ]
        answers = self._call(self.client.query_batch_points, self.alias, requests=requests)
        present = {i: len(a.points) for i, a in zip(indices, answers)}
        return present, self.count()

    def healthy(self) -> tuple[bool, str]:
        try:
            self._call(self.client.get_collections)
            return True, "ok"
        except IndexUnavailable as exc:
            return False, str(exc)[:200]

    # -- bounded scans for reconcile and the self-healing check (pages, never the whole index) -----
    def retrieve_payloads(self, ids: list[str]) -> dict[str, dict]:
        """Payloads of the points among `ids` that exist (absent ids are missing points)."""
        if not ids:
            return {}
        self.ensure()
        points = self._call(
            self.client.retrieve, self.alias, ids=ids, with_payload=True, with_vectors=False
        )
        return {str(p.id): p.payload or {} for p in points}

    def scroll_pages(
        self,
        limit: int = 1000,
        with_payload: bool | list[str] = False,
        where: dict | None = None,
    ) -> Iterator[list[tuple[str, dict]]]:
        """Every point as pages of (id, payload), keyset by point id; `where` matches payload
        fields exactly ({"namespace": "money"})."""
        self.ensure()
        scroll_filter = None
        if where:
            scroll_filter = qm.Filter(
                must=[
                    qm.FieldCondition(key=key, match=qm.MatchValue(value=value))
                    for key, value in where.items()
                ]
            )
        offset = None
        while True:
            points, offset = self._call(
                self.client.scroll,
                self.alias,
                scroll_filter=scroll_filter,
                limit=limit,
                offset=offset,
                with_payload=with_payload,
                with_vectors=False,
            )
            if points:
                yield [(str(p.id), p.payload or {}) for p in points]
            if offset is None:
                return

    def checksum_counts(self, limit: int) -> dict[str, int]:
        """Points per document checksum (one facet call; exact). On a server the facet needs a
        keyword index on `checksum`, made here once per process."""
        self.ensure()
        if self._lock is None and not getattr(self, "_checksum_indexed", False):
            self._call(
                self.client.create_payload_index,
                self.current_collection() or self.alias,
                "checksum",
                field_schema=qm.PayloadSchemaType.KEYWORD,
                wait=True,
            )
            self._checksum_indexed = True
        reply = self._call(self.client.facet, self.alias, "checksum", limit=limit, exact=True)
        return {str(hit.value): hit.count for hit in reply.hits}

    def hide_document(self, document_id: int) -> None:
        """Take a document out of local-mode BM25 answers at once (in-process postings); its
        points are deleted right after, in pages (delete_document_in_pages)."""
        if self._postings is not None:
            with self._lock:
                # Remembered, so postings built later (first search) skip its remaining points.
                self._hidden.add(document_id)
                if self._mirrored:
                    self._postings.remove_document(document_id)
                    if self._dense is not None:
                        self._dense.remove_document(document_id)

    def delete_document_in_pages(self, document_id: int, page: int = 256) -> int:
        """delete_document, a page of ids at a time: local mode writes each point to its file,
        so one filter delete of 20k points would hold the lock (and every search) for seconds."""
        ids = sorted(self.document_point_ids(document_id))
        for start in range(0, len(ids), page):
            self.delete_points(ids[start : start + page])
        if self._lock is not None:
            with self._lock:
                self._hidden.discard(document_id)
        return len(ids)

    def _local_persistences(self) -> list:
        """qdrant-client local mode's per-collection SQLite writers (pinned 1.20); [] elsewhere."""
        collections = getattr(getattr(self.client, "_client", None), "collections", None) or {}
        return [
            c.storage
            for c in collections.values()
            if getattr(getattr(c, "storage", None), "storage", None) is not None
        ]

    @contextmanager
    def _local_transaction(self):
        """One SQLite commit for a whole upsert batch instead of one per point: local mode's
        `persist` wraps each point in `with connection:` (a commit each, 2,760 for a 5 MB
        transcript). Its connection is swapped for one whose `with` does not commit, and the
        batch commits once at the end. Local mode applies a batch to memory point by point either
        way; if a write fails, the batch is rolled back on disk and the error raised, and the
        caller removes the document's points (write_vectors) or the index check rewrites them."""
        if self._lock is None:
            yield
            return
        with self._lock:
            writers = self._local_persistences()
            connections = [w.storage for w in writers]
            for writer, connection in zip(writers, connections):
                writer.storage = _NoCommit(connection)
            try:
                yield
            except BaseException:
                for connection in connections:
                    connection.rollback()
                raise
            else:
                for connection in connections:
                    connection.commit()
            finally:
                for writer, connection in zip(writers, connections):
                    writer.storage = connection

    def tune_local_storage(self) -> None:
        """Embedded Qdrant on disk commits every point with an fsync (a 20k-point delete took
        240 s here); WAL with synchronous=NORMAL keeps each commit atomic without the fsync
        (~40x faster). A power cut may lose the last writes, which the SQL-driven self-healing
        check rewrites. Reaches into qdrant-client's local storage (pinned 1.20); a no-op elsewhere."""
        collections = getattr(getattr(self.client, "_client", None), "collections", None) or {}
        for collection in collections.values():
            connection = getattr(getattr(collection, "storage", None), "storage", None)
            if connection is not None and not getattr(collection, "_wwhd_tuned", False):
                with self._lock:
                    connection.execute("PRAGMA journal_mode=WAL")
                    connection.execute("PRAGMA synchronous=NORMAL")
                collection._wwhd_tuned = True


def _sparse_vectors(texts: list[str]) -> list[tuple[list[int], list[float]]]:
    return [sparse.document_vector(t) for t in texts]


def _local_vectors(embedder: Embedder, texts: list[str]):
    return embedder.embed(texts), _sparse_vectors(texts)


def _yield() -> None:
    """Let other greenlets run. Under gunicorn's gevent worker an ingestion job or reconcile is a
    greenlet, and local Qdrant's writes are CPU work that holds the event loop for a whole batch;
    /health and open streams get a turn between batches (wwhd/offload.py: pause)."""
    pause()


class _NoCommit:
    """A sqlite3 connection whose `with` block neither commits nor rolls back (see
    KnowledgeIndex._local_transaction); everything else goes to the connection."""

    def __init__(self, connection):
        self._connection = connection

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self._connection, name)
