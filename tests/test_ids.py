"""Ids: never reused on SQLite, and any id beyond the 32-bit key range is a 404 or 422, never a 500."""

from __future__ import annotations

import pytest

from tests.conftest import Auth, close_app, make_app
from wwhd.extensions import db
from wwhd.models import Citation

HUGE_IDS = (2**31, 2**31 + 7, 2**63, 10**20)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_app(request, tmp_path):
    overrides = {}
    if request.param == "postgresql":
        overrides["DATABASE_URL"] = request.getfixturevalue("postgres_db")
    app = make_app(tmp_path, **overrides)
    yield app
    close_app(app)


def test_ids_beyond_the_key_range_are_not_found(any_app):
    client = any_app.test_client()
    users = Auth(any_app, client)
    admin = users.headers("admin")
    for huge in HUGE_IDS:
        for method, path in (
            ("get", f"/api/v1/documents/{huge}"),
            ("patch", f"/api/v1/documents/{huge}"),
            ("delete", f"/api/v1/documents/{huge}"),
            ("post", f"/api/v1/documents/{huge}/reindex"),
            ("patch", f"/api/v1/admin/users/{huge}"),
            ("delete", f"/api/v1/admin/users/{huge}"),
        ):
            reply = client.open(path, method=method.upper(), json={"role": "user"}, headers=admin)
            assert reply.status_code == 404, (method, path, reply.get_json())
            assert reply.get_json()["error"]["code"] == "NOT_FOUND"


def test_a_citation_id_beyond_the_key_range_is_not_a_citation(any_app):
    client = any_app.test_client()
    headers = Auth(any_app, client).headers("user")
    answer = client.post("/api/v1/chat", json={"content": "money?"}, headers=headers).get_json()
    with any_app.app_context():
        db.session.add(Citation(message_id=answer["message_id"], position=1, title="A talk"))
        db.session.commit()
    path = f"/api/v1/messages/{answer['message_id']}/feedback"
    for huge in HUGE_IDS:
        reply = client.post(path, json={"rating": "up", "citation_id": huge}, headers=headers)
        assert reply.status_code == 422, (huge, reply.get_json())
        assert reply.get_json()["error"]["fields"][0]["field"] == "citation_id"


def test_a_deleted_documents_id_goes_to_no_later_upload(client, auth):
    admin = auth.headers("admin")

    def add(text: str) -> int:
        reply = client.post(
            "/api/v1/documents/",
            json={"namespace": "general", "title": text, "content": f"{text} " * 40},
            headers=admin,
        )
        assert reply.status_code == 202, reply.get_json()
        return reply.get_json()["id"]

    add("first talk")
    second = add("second talk")
    deleted = client.delete(f"/api/v1/documents/{second}", headers=admin)
    assert deleted.status_code in (200, 202, 204), deleted.get_json()
    # Without AUTOINCREMENT SQLite hands the largest freed rowid out again, and saved citations
    # and feedback would then point at a different document.
    assert add("third talk") > second
