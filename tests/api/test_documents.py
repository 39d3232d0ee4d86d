"""Knowledge-base admin API: uploads through jobs to citations, edits, deletes and clear 4xx errors."""

from __future__ import annotations

import io
import re

import pytest

from wwhd.deps import get_runner
from wwhd.extensions import db
from wwhd.models import Chunk, Document

VIDEO = "https://www.youtube.com/watch?v=abcDEF12345"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
FILLER = [
    "we talk about the weather and the garden",
    "the students arrive early and sweep the floor",
    "a long story about a bicycle trip along the coast",
    "some notes on reading books slowly",
    "thoughts about tea, rain and quiet mornings",
]


def vtt(minutes: int = 20, secret_at: int = 12 * 60 + 5) -> bytes:
    """A WebVTT talk with a cue every 5 s and one distinctive sentence at `secret_at` seconds."""
    lines = ["WEBVTT", ""]
    for n, start in enumerate(range(0, minutes * 60, 5)):
        text = (
            "The copper kettle teaches patience: never rush the water to boil."
            if start == secret_at
            else f"{FILLER[n % len(FILLER)]} number {n}."
        )
        stamp = lambda s: f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}.000"  # noqa: E731
        lines += [stamp(start) + " --> " + stamp(start + 5), text, ""]
    return "\n".join(lines).encode()


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one Helvetica text line per page ("" gives a page with no text)."""
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] /Count {len(pages)} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for page_id, text in zip(page_ids, pages):
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>"
            f" /Contents {page_id + 1} 0 R >>"
        ).encode()
        stream = (f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET" if text else "BT ET").encode("latin-1")
        objects[page_id + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for number in sorted(objects):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.fixture
def admin(auth):
    return auth.headers("admin")


def upload(client, headers, data: bytes, filename: str, **form):
    form = {"namespace": "general", **form, "file": (io.BytesIO(data), filename)}
    return client.post(
        "/api/v1/documents/upload", data=form, headers=headers, content_type="multipart/form-data"
    )


def wait(app, document_id: int) -> str:
    return get_runner(app).wait(document_id)


def ask(client, headers, question: str) -> dict:
    reply = client.post("/api/v1/chat", json={"content": question}, headers=headers)
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()


def test_vtt_upload_is_cited_at_minute_twelve(app, client, admin, auth):
    reply = upload(client, admin, vtt(), "talk.vtt", youtube_url=VIDEO, title="Kettle talk")
    assert reply.status_code == 202, reply.get_json()
    doc = reply.get_json()
    assert (
        doc["status"] == "pending" and doc["title"] == "Kettle talk" and doc["youtube_url"] == VIDEO
    )
    assert wait(app, doc["id"]) == "indexed"
    shown = client.get(f"/api/v1/documents/{doc['id']}", headers=admin).get_json()
    assert (
        shown["status"] == "indexed"
        and shown["chunk_count"] > 5
        and shown["indexed_at"]
        and shown["error"] is None
    )

    answer = ask(client, auth.headers("user"), "Why does the copper kettle teach patience?")
    cited = [c for c in answer["citations"] if c["document_id"] == doc["id"]]
    assert cited, answer
    first = cited[0]
    hours, minutes, seconds = (int(x) for x in first["timestamp"].split(":"))
    at = hours * 3600 + minutes * 60 + seconds
    assert at == 12 * 60 + 5, first["timestamp"]  # the cue where it is said, not the chunk's start
    assert re.search(r"[?&]v=abcDEF12345&t=(\d+)s$", first["url"]).group(1) == str(at)


def test_edit_replaces_wording_and_delete_removes_it(app, client, admin, auth):
    created = client.post(
        "/api/v1/documents/",
        headers=admin,
        json={
            "namespace": "money",
            "title": "Jar notes",
            "content": "Keep the marmalade jar for coins and count them weekly.",
            "source_url": "",
            "youtube_url": "",
        },
    )
    assert created.status_code == 202, created.get_json()
    doc = created.get_json()
    assert doc["source_url"] is None and doc["youtube_url"] is None
    assert wait(app, doc["id"]) == "indexed"
    user = auth.headers("user")
    assert any(
        c["document_id"] == doc["id"]
        for c in ask(client, user, "What about the marmalade jar?")["citations"]
    )

    edited = client.put(
        f"/api/v1/documents/{doc['id']}",
        headers=admin,
        json={
            "namespace": "money",
            "title": "Jar notes",
            "content": "Put spare coins in the pickle crock every Friday.",
            "source_url": "https://example.com/jar",
            "youtube_url": "",
        },
    )
    assert edited.status_code == 200, edited.get_json()
    body = edited.get_json()
    assert (
        body["status"] == "indexed"
        and "pickle crock" in body["content"]
        and body["source_url"] == "https://example.com/jar"
    )
    assert not any(
        c["document_id"] == doc["id"]
        for c in ask(client, user, "What about the marmalade jar?")["citations"]
    )
    new = [
        c
        for c in ask(client, user, "Why the pickle crock on Friday?")["citations"]
        if c["document_id"] == doc["id"]
    ]
    assert new and new[0]["url"] == "https://example.com/jar"

    retitled = client.patch(
        f"/api/v1/documents/{doc['id']}", headers=admin, json={"title": "Crock notes"}
    )
    assert retitled.status_code == 200 and retitled.get_json()["title"] == "Crock notes"
    new = [
        c
        for c in ask(client, user, "Why the pickle crock on Friday?")["citations"]
        if c["document_id"] == doc["id"]
    ]
    assert new and new[0]["title"] == "Crock notes"

    assert client.delete(f"/api/v1/documents/{doc['id']}", headers=admin).status_code == 200
    assert not any(
        c["document_id"] == doc["id"]
        for c in ask(client, user, "Why the pickle crock on Friday?")["citations"]
    )
    assert client.get(f"/api/v1/documents/{doc['id']}", headers=admin).status_code == 404
    assert client.delete(f"/api/v1/documents/{doc['id']}", headers=admin).status_code == 404
    with app.app_context():
        assert db.session.query(Chunk).filter_by(document_id=doc["id"]).count() == 0


def test_same_file_twice_is_one_document(app, client, admin):
    first = upload(
        client, admin, b"Breathe in for four, out for six.\n", "breath.txt", namespace="meditation"
    )
    assert first.status_code == 202
    wait(app, first.get_json()["id"])
    second = upload(
        client,
        admin,
        b"Breathe in for four, out for six.\r\n\r\n",
        "copy.md",
        namespace="meditation",
    )
    assert second.status_code == 409
    body = second.get_json()
    assert body["duplicate_of"]["id"] == first.get_json()["id"]
    assert f"document {first.get_json()['id']}" in body["detail"]
    with app.app_context():
        assert db.session.query(Document).count() == 1


@pytest.mark.parametrize(
    "data,filename,needle",
    [
        (b"", "empty.txt", "empty"),
        (b"   \n\n  ", "blank.vtt", "empty"),
        (PNG, "photo.pdf", "PNG"),
        (make_pdf([""]), "scan.pdf", "no extractable text"),
        (b"WEBVTT\n\nno cues here\n", "bad.vtt", "no cues"),
    ],
)
def test_unreadable_uploads_are_clear_422s(app, client, admin, data, filename, needle):
    reply = upload(client, admin, data, filename)
    assert reply.status_code == 422, reply.get_json()
    body = reply.get_json()
    assert needle.lower() in body["detail"].lower() and filename in body["detail"]
    assert body["error"]["fields"][0]["field"] == "file"
    with app.app_context():
        assert db.session.query(Document).count() == 0


def test_files_over_the_limit_are_413(app, client, admin):
    reply = upload(client, admin, b"a" * (10 * 1024 * 1024 + 1), "big.txt")
    assert reply.status_code == 413
    assert "10 MB" in reply.get_json()["detail"]
    reply = upload(client, admin, b"a" * (20 * 1024 * 1024), "huge.txt")
    assert reply.status_code == 413 and "10 MB" in reply.get_json()["detail"]


def test_pdf_upload_keeps_pages(app, client, admin):
    reply = upload(
        client,
        admin,
        make_pdf(["Rice first, then vegetables.", "Soup on cold evenings."]),
        "food.pdf",
        namespace="diet_food",
        source_url="https://example.com/food.pdf",
    )
    assert reply.status_code == 202, reply.get_json()
    doc_id = reply.get_json()["id"]
    assert wait(app, doc_id) == "indexed"
    with app.app_context():
        pages = [
            c.page
            for c in db.session.query(Chunk).filter_by(document_id=doc_id).order_by(Chunk.index)
        ]
    assert pages == [1, 2]


def test_validation_errors(client, admin):
    assert upload(client, admin, b"hello there", "a.txt", namespace="nope").status_code == 422
    assert (
        upload(
            client, admin, b"hello there", "a.txt", youtube_url="https://example.com/x"
        ).status_code
        == 422
    )
    reply = client.post("/api/v1/documents/upload", data={"namespace": "general"}, headers=admin)
    assert reply.status_code == 422 and "file" in reply.get_json()["detail"]
    reply = client.post(
        "/api/v1/documents",
        headers=admin,
        json={"namespace": "general", "title": "", "content": "x"},
    )
    assert reply.status_code == 422 and reply.get_json()["error"]["fields"][0]["field"] == "title"
    assert client.get("/api/v1/documents/?status=bogus", headers=admin).status_code == 422
    assert client.get("/api/v1/documents/?limit=0", headers=admin).status_code == 422


def test_admin_only(client, auth):
    assert client.get("/api/v1/documents/").status_code == 401
    for role in ("viewer", "user"):
        headers = auth.headers(role)
        assert client.get("/api/v1/documents/", headers=headers).status_code == 403
        assert client.get("/api/v1/documents/namespaces", headers=headers).status_code == 403
        assert upload(client, headers, b"hello", "a.txt").status_code == 403


def test_list_filters_and_namespaces(app, client, admin):
    ids = []
    for ns, text in (
        ("money", "Save first, spend later."),
        ("money", "Debt is a heavy backpack."),
        ("business", "Know your customer by name."),
    ):
        reply = client.post(
            "/api/v1/documents",
            headers=admin,
            json={"namespace": ns, "title": text[:10], "content": text},
        )
        ids.append(reply.get_json()["id"])
    for doc_id in ids:
        assert wait(app, doc_id) == "indexed"
    listed = client.get("/api/v1/documents/?namespace=money", headers=admin)
    assert listed.status_code == 200 and listed.headers["X-Total-Count"] == "2"
    assert {d["namespace"] for d in listed.get_json()} == {"money"}
    assert set(listed.get_json()[0]) >= {
        "id",
        "namespace",
        "title",
        "content",
        "source_url",
        "youtube_url",
        "status",
        "chunk_count",
        "created_at",
        "indexed_at",
        "error",
    }
    page = client.get("/api/v1/documents?skip=1&limit=1&status=indexed", headers=admin)
    assert len(page.get_json()) == 1 and page.headers["X-Total-Count"] == "3"

    spaces = {
        n["name"]: n for n in client.get("/api/v1/documents/namespaces", headers=admin).get_json()
    }
    assert spaces["money"]["document_count"] == 2 and spaces["general"]["document_count"] == 0
    assert spaces["money"]["description"]

    added = client.post(
        "/api/v1/namespaces",
        headers=admin,
        json={
            "name": "gardening",
            "description": "Plants and soil.",
            "keywords": ["Soil", "plants"],
        },
    )
    assert added.status_code == 201 and added.get_json()["keywords"] == ["plants", "soil"]
    assert (
        client.post("/api/v1/namespaces", headers=admin, json={"name": "gardening"}).status_code
        == 409
    )
    assert (
        client.post("/api/v1/namespaces", headers=admin, json={"name": "Bad Name"}).status_code
        == 422
    )
    spaces = client.get("/api/v1/documents/namespaces", headers=admin).get_json()
    assert "gardening" in [n["name"] for n in spaces]
    assert (
        client.post(
            "/api/v1/documents",
            headers=admin,
            json={"namespace": "gardening", "title": "Soil", "content": "Feed the soil."},
        ).status_code
        == 202
    )


def test_reindex_document_and_namespace(app, client, admin):
    doc = client.post(
        "/api/v1/documents",
        headers=admin,
        json={
            "namespace": "business",
            "title": "Prices",
            "content": "Never compete on price alone.",
        },
    ).get_json()
    assert wait(app, doc["id"]) == "indexed"
    again = client.post(f"/api/v1/documents/{doc['id']}/reindex", headers=admin)
    assert again.status_code == 202 and again.get_json()["status"] == "pending"
    assert wait(app, doc["id"]) == "indexed"
    counts = client.post("/api/v1/namespaces/business/reindex", headers=admin)
    assert counts.status_code == 200 and counts.get_json()["documents"] == 1
    assert client.post("/api/v1/namespaces/nope/reindex", headers=admin).status_code == 404
    assert client.post("/api/v1/documents/999/reindex", headers=admin).status_code == 404


def test_out_of_range_ids_are_404(client, admin):
    for method in ("get", "delete", "patch"):
        reply = getattr(client, method)(
            "/api/v1/documents/99999999999999999999999", headers=admin, json={}
        )
        assert reply.status_code == 404, (method, reply.get_json())
    assert (
        client.post("/api/v1/documents/99999999999999999999999/reindex", headers=admin).status_code
        == 404
    )


def test_put_without_namespace_keeps_the_missing_fields(app, client, admin):
    """The original frontend's Edit PUTs {title, content, source_url, youtube_url}: no namespace,
    no tags. Until now that was a 422 "namespace is required"; a missing field keeps its value."""
    created = client.post(
        "/api/v1/documents/",
        headers=admin,
        json={
            "namespace": "money",
            "title": "Envelope notes",
            "content": "Label one envelope per week and keep receipts inside it.",
            "tags": ["budget"],
            "published_at": "2024-05-31",
        },
    )
    assert created.status_code == 202, created.get_json()
    doc = created.get_json()
    assert wait(app, doc["id"]) == "indexed"
    edited = client.put(
        f"/api/v1/documents/{doc['id']}",
        headers=admin,
        json={
            "title": "Envelope habits",
            "content": "Label one envelope per month and keep receipts inside it.",
            "source_url": "https://example.com/envelopes",
            "youtube_url": "",
        },
    )
    assert edited.status_code == 200, edited.get_json()
    body = edited.get_json()
    assert body["namespace"] == "money" and body["tags"] == ["budget"]
    assert body["published_at"] == "2024-05-31" and body["title"] == "Envelope habits"
    assert "per month" in body["content"] and body["status"] == "indexed"
    assert body["source_url"] == "https://example.com/envelopes" and body["youtube_url"] is None
    # Only the title: content, namespace and links stay.
    renamed = client.put(f"/api/v1/documents/{doc['id']}", headers=admin, json={"title": "E"})
    assert renamed.status_code == 200, renamed.get_json()
    assert renamed.get_json()["source_url"] == "https://example.com/envelopes"
    assert "per month" in renamed.get_json()["content"]


def test_cli_ingest_and_the_api_share_one_duplicate_rule(app, client, admin, tmp_path):
    """The documents service is the one place for add/de-duplicate: a file the CLI ingested is a
    409 naming it when uploaded through the API, and the other way round."""
    first = tmp_path / "pebbles.txt"
    first.write_text("Carry three pebbles in your pocket and move one per kind word said.")
    result = app.test_cli_runner().invoke(
        args=["wwhd", "ingest", "--namespace", "general", str(first)]
    )
    assert result.exit_code == 0, result.output
    assert "1 indexed" in result.output
    again = upload(client, admin, first.read_bytes(), "copy.txt")
    assert again.status_code == 409, again.get_json()
    existing = again.get_json()["duplicate_of"]
    with app.app_context():
        doc = db.session.get(Document, existing["id"])
        assert doc.filename == "pebbles.txt" and doc.original_key  # the CLI kept the original too

    second = b"Water the basil before breakfast, never after dinner."
    assert upload(client, admin, second, "basil.txt").status_code == 202
    path = tmp_path / "basil.txt"
    path.write_bytes(second)
    result = app.test_cli_runner().invoke(
        args=["wwhd", "ingest", "--namespace", "general", str(path)]
    )
    assert result.exit_code == 0 and "1 duplicate" in result.output, result.output
    unknown = app.test_cli_runner().invoke(
        args=["wwhd", "ingest", "--namespace", "nope", str(path)]
    )
    assert unknown.exit_code != 0 and "Unknown namespace 'nope'" in unknown.output
