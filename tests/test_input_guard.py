"""One input guard (wwhd/api/guard.py, wwhd/validation.py): JSON depth and string validity on every
route, links limited to http(s) with a host, bidi controls stripped from what people see."""

from __future__ import annotations

import io
import re

import pytest

from wwhd.deps import get_runner
from wwhd.extensions import db
from wwhd.models import Chat, Document, User
from wwhd.validation import MAX_JSON_DEPTH, check_json_value, link_problem, strip_bidi

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
PATH_VALUES = {"int": "1", "default": "x"}


def json_routes(app) -> list[tuple[str, str]]:
    """Every (method, path) that takes a body, path parameters filled in."""
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & WRITE_METHODS):
            path = re.sub(
                r"<(?:(\w+):)?\w+>",
                lambda m: PATH_VALUES.get(m.group(1) or "default", "x"),
                rule.rule,
            )
            routes.append((method, path))
    return routes


@pytest.fixture
def admin(auth):
    return auth.headers("admin")


def nested(depth: int) -> bytes:
    return (b'{"a":' * depth) + b"1" + (b"}" * depth)


def send(client, method: str, path: str, raw: bytes, headers: dict):
    return client.open(
        path, method=method, data=raw, headers={**headers, "Content-Type": "application/json"}
    )


def test_every_write_route_is_covered(app):
    routes = json_routes(app)
    assert len(routes) >= 20 and ("POST", "/api/v1/auth/login") in routes


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 64, 990, 100_000])
def test_deep_json_is_400_on_every_route(app, client, admin, depth):
    raw = (b"[" * depth) + (b"]" * depth) if depth > 1000 else nested(depth)
    for method, path in json_routes(app):
        reply = send(client, method, path, raw, admin)
        body = reply.get_json()
        assert reply.status_code == 400, (method, path, reply.status_code, body)
        assert body["error"]["code"] == "VALIDATION_ERROR"
        assert "nested too deeply" in body["detail"] and body["error"]["request_id"]


def test_deep_json_is_400_without_a_token(client):
    # The anonymous case of the report: RecursionError and a 500 on /auth/login at ~990 levels.
    reply = send(client, "POST", "/api/v1/auth/login", nested(990), {})
    assert reply.status_code == 400 and "nested too deeply" in reply.get_json()["detail"]


@pytest.mark.parametrize(
    "raw, field",
    [
        (rb'{"content": "\ud800"}', "content"),
        (rb'{"title": "ok \udfff ok"}', "title"),
        (rb'{"tags": ["fine", "\ud83d"]}', "tags"),
        (rb'{"settings": {"deep": ["\udc00"]}}', "settings"),
        (rb'{"\ud800": 1}', None),
        (rb'{"settings": {"\ud800": 1}}', "settings"),
        (rb'"\ud800"', None),
    ],
)
def test_lone_surrogates_are_400_on_every_route(app, client, admin, raw, field):
    for method, path in json_routes(app):
        reply = send(client, method, path, raw, admin)
        body = reply.get_json()
        assert reply.status_code == 400, (method, path, reply.status_code, body)
        assert "lone surrogate" in body["detail"]
        if field:
            assert body["error"]["fields"][0]["field"] == field


def test_valid_json_passes_the_guard(client, auth):
    headers = auth.headers("user")
    # A surrogate *pair* is one character (an emoji), and 31 levels of settings are allowed.
    reply = send(
        client, "POST", "/api/v1/chat", rb'{"content": "Hello \ud83d\ude00 money"}', headers
    )
    assert reply.status_code == 200, reply.get_json()
    settings = (b'{"s":' * (MAX_JSON_DEPTH - 2)) + b"1" + (b"}" * (MAX_JSON_DEPTH - 2))
    reply = send(client, "PATCH", "/api/v1/me", b'{"settings": ' + settings + b"}", headers)
    assert reply.status_code == 200, reply.get_json()
    # Broken JSON is still the view's own message.
    reply = send(client, "POST", "/api/v1/chat", b'{"content": ', headers)
    assert reply.status_code == 400 and "not valid JSON" in reply.get_json()["detail"]


def test_check_json_value_limits():
    check_json_value({"a": [[{"b": "ok"}]]})
    with pytest.raises(ValueError, match="nested too deeply"):
        check_json_value([[[]]], max_depth=2)
    check_json_value([[]], max_depth=2)


# -- links ------------------------------------------------------------------------------------------
BAD_LINKS = [
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "JAVASCRIPT://x.com/%0aalert(1)",
    'http://x"><script>alert(1)</script>',
    "https://example.com/a b",
    "https://example.com/'onmouseover='x",
    "http:///no-host",
    "https://",
    "https://user:secret@example.com/",
    "ftp://example.com/file",
    "https://example.com:99999/",
    "https://exa\u202emple.com/",
]
GOOD_LINKS = [
    "https://example.com/talks/money?part=2#notes",
    "http://[::1]:8080/x",
    "https://münchen.de/weg",
]


@pytest.mark.parametrize("url", BAD_LINKS)
def test_bad_links_have_a_problem(url):
    assert link_problem(url), url


@pytest.mark.parametrize("url", GOOD_LINKS)
def test_good_links_pass(url):
    assert link_problem(url) is None


def _upload(client, headers, **form):
    data = {
        "namespace": "general",
        **form,
        "file": (io.BytesIO(b"Breathe out slowly before you answer."), "talk.txt"),
    }
    return client.post(
        "/api/v1/documents/upload", data=data, headers=headers, content_type="multipart/form-data"
    )


@pytest.mark.parametrize("field", ["source_url", "youtube_url"])
@pytest.mark.parametrize("url", BAD_LINKS[:9])
def test_bad_links_are_422_on_create_upload_and_edit(app, client, admin, field, url):
    created = client.post(
        "/api/v1/documents",
        json={"namespace": "general", "title": "T", "content": "Some text here.", field: url},
        headers=admin,
    )
    uploaded = _upload(client, admin, **{field: url})
    for reply in (created, uploaded):
        assert reply.status_code == 422, reply.get_json()
        assert reply.get_json()["error"]["fields"][0]["field"] == field
    with app.app_context():
        assert db.session.query(Document).count() == 0
    doc = client.post(
        "/api/v1/documents",
        json={"namespace": "general", "title": "T", "content": "Other text, fine."},
        headers=admin,
    ).get_json()
    get_runner(app).wait(doc["id"])
    reply = client.patch(f"/api/v1/documents/{doc['id']}", json={field: url}, headers=admin)
    assert reply.status_code == 422 and reply.get_json()["error"]["fields"][0]["field"] == field


def test_good_links_are_stored(client, admin):
    reply = client.post(
        "/api/v1/documents",
        json={
            "namespace": "general",
            "title": "T",
            "content": "Text for links.",
            "source_url": GOOD_LINKS[0],
            "youtube_url": "https://www.youtube.com/watch?v=abcDEF12345",
        },
        headers=admin,
    )
    assert reply.status_code == 202, reply.get_json()
    assert reply.get_json()["source_url"] == GOOD_LINKS[0]


# -- bidi controls ---------------------------------------------------------------------------------
SPOOF = "invoice\u202efdp.exe"  # displays as "invoiceexe.pdf"
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def test_strip_bidi_removes_every_bidi_control_and_nothing_else():
    assert strip_bidi(SPOOF) == "invoicefdp.exe"
    assert strip_bidi(f"a{BIDI}b") == "ab"
    assert strip_bidi("שלום Привет 你好 😀") == "שלום Привет 你好 😀"


def test_document_titles_filenames_and_tags_lose_bidi_controls(app, client, admin):
    data = {
        "namespace": "general",
        "title": SPOOF,
        "tags": '["a\u202eb"]',
        "file": (io.BytesIO(b"Kettle on, shoulders down."), "notes\u202etxt.md"),
    }
    up = client.post(
        "/api/v1/documents/upload", data=data, headers=admin, content_type="multipart/form-data"
    ).get_json()
    assert up["title"] == "invoicefdp.exe" and up["tags"] == ["ab"]
    made = client.post(
        "/api/v1/documents",
        json={"namespace": "general", "title": f"\u2067{SPOOF}\u2069", "content": "Rice first."},
        headers=admin,
    ).get_json()
    get_runner(app).wait(made["id"])  # an edit while the job runs would be a 409
    edited = client.patch(
        f"/api/v1/documents/{made['id']}", json={"title": f"new {SPOOF}"}, headers=admin
    ).get_json()
    assert made["title"] == "invoicefdp.exe" and edited["title"] == "new invoicefdp.exe"
    with app.app_context():
        for doc in db.session.query(Document):
            for value in (doc.title, doc.filename or ""):
                assert not set(value) & set(BIDI), value
        assert db.session.get(Document, up["id"]).filename == "notestxt.md"


def test_chat_titles_and_display_names_lose_bidi_controls(app, client, auth):
    headers = auth.headers("user")
    reply = client.post("/api/v1/chat", json={"content": f"{SPOOF} money?"}, headers=headers)
    chat_id = reply.get_json()["chat_id"]
    renamed = client.patch(f"/api/v1/chats/{chat_id}", json={"title": SPOOF}, headers=headers)
    assert renamed.get_json()["title"] == "invoicefdp.exe"
    me = client.patch("/api/v1/me", json={"display_name": SPOOF}, headers=headers)
    assert me.get_json()["display_name"] == "invoicefdp.exe"
    registered = client.post(
        "/api/v1/auth/register",
        json={"email": "rtl@example.com", "password": "long-enough-pass", "display_name": SPOOF},
    )
    assert registered.status_code == 201, registered.get_json()
    with app.app_context():
        assert not set(db.session.get(Chat, chat_id).title) & set(BIDI)
        names = [u.display_name for u in db.session.query(User)]
        assert "invoicefdp.exe" in names and not any(set(n or "") & set(BIDI) for n in names)
    first = client.post("/api/v1/chat", json={"content": f"{SPOOF} again"}, headers=headers)
    with app.app_context():
        assert db.session.get(Chat, first.get_json()["chat_id"]).title.startswith("invoicefdp.exe")


def test_register_refuses_a_display_name_that_is_no_string(client):
    reply = client.post(
        "/api/v1/auth/register",
        json={"email": "xyz@example.com", "password": "long-enough-pass", "display_name": {"a": 1}},
    )
    assert reply.status_code == 422
    assert reply.get_json()["error"]["fields"][0]["field"] == "display_name"


def test_cli_ingest_refuses_bad_links(app, tmp_path):
    source = tmp_path / "talk.txt"
    source.write_text("Breathe out slowly.")
    for option in ("--source-url", "--youtube-url"):
        result = app.test_cli_runner().invoke(
            args=["wwhd", "ingest", str(source), "--namespace", "general", option, "javascript:x"]
        )
        assert result.exit_code == 1 and f"{option} must be an http" in result.output
    with app.app_context():
        assert db.session.query(Document).count() == 0
