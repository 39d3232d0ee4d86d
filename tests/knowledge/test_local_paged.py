"""The paged client of the maintenance commands (knowledge/local_paged.py) against qdrant-client's
own local mode: what it writes, local mode then loads as the same points with the same scores;
what it reads equals what local mode answers; and it never holds the folder's points in memory."""

from __future__ import annotations

import base64
import pickle
import sqlite3
import uuid
from pathlib import Path

import pytest
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from tests.conftest import close_app
from wwhd.deps import get_deps, maintenance_index
from wwhd.extensions import db
from wwhd.knowledge import reconcile
from wwhd.knowledge.index import KnowledgeIndex, make_client
from wwhd.knowledge.local_paged import PagedLocalClient
from wwhd.models import Chunk, Document
from wwhd.providers.local_embed import LocalEmbedder

TEXTS = [
    "breathe slowly and keep the shoulders soft",
    "save a little every week before you spend",
    "the customer remembers how you treated them",
    "walk in the morning when the orchard is quiet",
]


def _point_id(n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, str(n)))


def _chunks(numbers, title: str = "Talk") -> list[dict]:
    return [
        {
            "id": _point_id(n),
            "text": TEXTS[n % 4] + f" {n}",
            "payload": {
                "document_id": 1 + n % 3,
                "namespace": "general" if n % 2 else "money",
                "title": f"{title} {n % 3}",
                "start_s": float(n),
                "checksum": f"sum-{n % 3}",
                "text": TEXTS[n % 4],
            },
        }
        for n in numbers
    ]


def _index(path: Path, paged: bool) -> KnowledgeIndex:
    return KnowledgeIndex(
        make_client(path=str(path), paged=paged), "kb", LocalEmbedder(), local=True
    )


def _write(index: KnowledgeIndex) -> None:
    """The writes reconcile and reindex make: upserts, rewrites, deletes by id and by filter."""
    index.upsert(_chunks(range(40)))
    index.upsert(_chunks(range(5, 15), title="Renamed"))  # rewrite existing points
    index.delete_points([_point_id(n) for n in (1, 2, 3)] + [_point_id(999)])  # 999: absent
    index.delete_document(3)
    index.client.close()


def _stored_rows(path: Path) -> dict[str, bytes]:
    (collection,) = (path / "collection").iterdir()
    with sqlite3.connect(collection / "storage.sqlite") as connection:
        rows = dict(connection.execute("SELECT id, point FROM points"))
    connection.close()
    return rows


def test_paged_writes_are_what_local_mode_writes(tmp_path):
    _write(_index(tmp_path / "local", paged=False))
    _write(_index(tmp_path / "paged", paged=True))
    # Byte for byte the same rows (keys and pickled points) ...
    assert _stored_rows(tmp_path / "paged") == _stored_rows(tmp_path / "local")
    # ... so qdrant-client's local mode opens both folders to the same points and scores.
    answers = []
    for name in ("local", "paged"):
        index = _index(tmp_path / name, paged=False)
        assert isinstance(index.client, QdrantClient)
        points, _ = index.client.scroll(
            index.alias, limit=100, with_payload=True, with_vectors=True
        )
        found = [index.search(q, limit=10) for q in ("breathe softly", "save money", "orchard")]
        answers.append(
            (
                sorted((str(p.id), p.payload, p.vector["dense"], p.vector["bm25"]) for p in points),
                [
                    [(h.chunk_id, h.score, h.sparse_score, h.dense_score) for h in r.hits]
                    for r in found
                ],
                index.client.get_aliases().aliases,
            )
        )
        index.client.close()
    assert answers[0] == answers[1]
    assert len(answers[0][0]) == 40 - 13 - 2  # document 3 (n % 3 == 2) and points 1, 3 are gone


def _read_all(client, alias: str) -> dict:
    """Every read the maintenance commands make, scrolled in small pages."""
    ids = [_point_id(n) for n in (0, 7, 8, 1234)]  # 1234 does not exist

    def scrolled(**kwargs) -> dict:
        seen, offset = {}, None
        while True:
            points, offset = client.scroll(alias, limit=3, offset=offset, **kwargs)
            for p in points:
                assert str(p.id) not in seen
                seen[str(p.id)] = p.payload
            if offset is None:
                return seen

    document_two = qm.Filter(
        must=[qm.FieldCondition(key="document_id", match=qm.MatchValue(value=2))]
    )
    return {
        "retrieve": [(str(p.id), p.payload) for p in client.retrieve(alias, ids=ids)],
        "retrieve_ids_only": [
            (str(p.id), p.payload) for p in client.retrieve(alias, ids=ids, with_payload=False)
        ],
        "scroll": scrolled(with_payload=["document_id"]),
        "scroll_filtered": scrolled(scroll_filter=document_two, with_payload=True),
        "count": client.count(alias, exact=True).count,
        "facet": client.facet(alias, "checksum", limit=10, exact=True).hits,
    }


def test_paged_reads_are_what_local_mode_answers(tmp_path):
    index = _index(tmp_path, paged=False)
    index.upsert(_chunks(range(30)))
    expected = _read_all(index.client, index.alias)
    index.client.close()
    paged = _index(tmp_path, paged=True)
    assert isinstance(paged.client, PagedLocalClient)
    paged.ensure()
    assert _read_all(paged.client, paged.alias) == expected
    assert expected["count"] == 30 and len(expected["scroll_filtered"]) == 10
    paged.client.close()


def test_the_paged_client_holds_no_points_and_offers_no_vectors(tmp_path):
    index = _index(tmp_path, paged=False)
    index.upsert(_chunks(range(30)))
    index.client.close()
    client = make_client(path=str(tmp_path), paged=True)
    try:
        (collection,) = client._client.collections.values()
        assert collection.ids == {} and collection.payload == []  # nothing loaded in memory
        assert client.count("kb").count == 30
        with pytest.raises(ValueError, match="vectors"):
            client.scroll("kb", with_vectors=True)
    finally:
        client.close()


def test_a_folder_with_legacy_rows_is_opened_whole(tmp_path):
    index = _index(tmp_path, paged=False)
    index.upsert(_chunks(range(10)))
    index.client.close()
    (collection,) = (tmp_path / "collection").iterdir()
    with sqlite3.connect(collection / "storage.sqlite") as connection:
        # An older qdrant-client's key for one point: a protocol-2 pickle of its id.
        key, blob = connection.execute("SELECT id, point FROM points LIMIT 1").fetchone()
        point_id = pickle.loads(blob).id
        legacy = base64.b64encode(pickle.dumps(point_id, protocol=2)).decode()
        connection.execute("UPDATE points SET id = ? WHERE id = ?", (legacy, key))
    connection.close()
    client = make_client(path=str(tmp_path), paged=True)
    try:
        assert not isinstance(client, PagedLocalClient)  # local mode reads (and rewrites) it
        assert client.count("kb").count == 10
    finally:
        client.close()


def test_cli_reconcile_and_reindex_page_the_folder(disk_app):
    runner = disk_app.test_cli_runner()
    assert runner.invoke(args=["wwhd", "load-samples"]).exit_code == 0
    close_app(disk_app)  # the folder is free again, as after `flask wwhd load-samples`
    disk_app.extensions["wwhd"] = None
    with disk_app.app_context():
        chunk_ids = sorted(db.session.scalars(db.select(Chunk.id)))
        with maintenance_index() as index:
            assert isinstance(index.client, PagedLocalClient)
            assert disk_app.extensions.get("wwhd") is None  # the app's own index stays shut
            index.delete_points(chunk_ids[:3])
            index.upsert([{"id": _point_id(77), "text": "ghost", "payload": {"document_id": 999}}])
    result = runner.invoke(args=["wwhd", "reconcile"])
    assert result.exit_code == 1 and "missing points (chunk row, no point): 3" in result.output
    assert "orphan points (no chunk row): 1" in result.output
    result = runner.invoke(args=["wwhd", "reconcile", "--repair"])
    assert result.exit_code == 0 and "Repaired 4 differences." in result.output, result.output
    result = runner.invoke(args=["wwhd", "reindex", "--all"])
    assert result.exit_code == 0 and f"({len(chunk_ids)} chunks)" in result.output, result.output
    # The server's way of opening the folder (all of it in memory) sees SQL exactly.
    with disk_app.app_context():
        assert db.session.query(Document).count() > 0
        index = get_deps().index
        assert index.count() == len(chunk_ids)
        assert reconcile.report(index).total == 0
        assert index.search("breathe", limit=3).hits
