"""Contract: every operation in /api/v1/openapi.json, driven with valid authenticated input, answers
with a status the document lists for it and a body that validates against the documented schema;
and a documented 422 is what a wrongly typed body gets, in the one error shape.

The document is generated from the same schemas that validate requests (api/schemas.py), so a
mismatch here means a view returns something its schema does not describe (the old hand-written
spec said DELETE /chats/{id} is 200 while it is 204, and hard-coded maxLength 4000).
"""

from __future__ import annotations

import io

import pytest
from jsonschema import Draft202012Validator

from tests.conftest import Auth

VIDEO = "https://www.youtube.com/watch?v=abcDEF12345"


def resolve(spec: dict, node):
    """Inline every local $ref (the API's schemas are not recursive)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve(spec, target)
        return {key: resolve(spec, value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(spec, item) for item in node]
    return node


def check(spec: dict, method: str, path: str, reply) -> None:
    """The reply's status is documented for the operation and its body matches that schema."""
    responses = resolve(spec, spec["paths"][path][method.lower()]["responses"])
    status = str(reply.status_code)
    documented = responses.get(status) or responses.get(f"{status[0]}XX")
    if documented is None and reply.status_code >= 400:
        documented = responses.get("default")
    assert documented is not None, (
        f"{method} {path} answered {status}, documented: {sorted(responses)}; "
        f"{reply.get_data(as_text=True)[:300]}"
    )
    content = documented.get("content")
    if not content:
        assert not reply.get_data(), f"{method} {path} {status} documents no body but sent one"
        return
    mimetype = reply.mimetype
    assert mimetype in content, f"{method} {path} {status}: {mimetype} not in {sorted(content)}"
    if mimetype == "application/json":
        errors = sorted(
            Draft202012Validator(content[mimetype]["schema"]).iter_errors(reply.get_json()),
            key=str,
        )
        assert not errors, f"{method} {path} {status}: {errors[0].message} at {errors[0].json_path}"


def make_world(client, auth: Auth) -> dict:
    """Admin and user tokens, an answered chat with a citation, a document, a spare account (the
    samples must be loaded)."""
    admin = auth.headers("admin")
    person = auth.create("user")
    user = {"Authorization": f"Bearer {auth.login(person)['access_token']}"}
    answer = client.post(
        "/api/v1/chat", json={"content": "How do I stop fighting about money?"}, headers=user
    ).get_json()
    chat = client.get(f"/api/v1/chats/{answer['chat_id']}", headers=user).get_json()
    cited = next(m for m in chat["messages"] if m["role"] == "assistant")["citations"]
    docs = client.get("/api/v1/documents/", headers=admin).get_json()
    spare = auth.create("viewer")
    spare_login = auth.login(spare)
    return {
        "admin": admin,
        "user": user,
        "chat_id": answer["chat_id"],
        "message_id": answer["message_id"],
        "citation_id": cited[0]["id"] if cited else None,
        "document_id": docs[0]["id"],
        "spare_id": spare["id"],
        "spare_refresh": {"Authorization": f"Bearer {spare_login['refresh_token']}"},
        "spare_access": {"Authorization": f"Bearer {spare_login['access_token']}"},
        "spare": spare,
        "person": person,
    }


@pytest.fixture
def world(samples, client):
    return make_world(client, Auth(samples, client))


def cases(w: dict) -> list[tuple]:
    """(method, documented path, concrete path, headers, request kwargs) — one valid call each, in
    an order where deletions come last. A new operation adds its line here (the fuzz run reuses
    this table for its valid calls and hostile variants)."""
    doc, chat, msg = w["document_id"], w["chat_id"], w["message_id"]
    text = {"namespace": "general", "title": "Contract", "content": "Tea first, then the dishes."}
    return [
        ("GET", "/health", "/health", {}, {}),
        ("GET", "/health/detailed", "/health/detailed", {}, {}),
        (
            "POST",
            "/api/v1/auth/register",
            "/api/v1/auth/register",
            {},
            {"json": {"email": "new1@example.com", "password": "correct-horse-battery"}},
        ),
        (
            "POST",
            "/api/v1/auth/signup",
            "/api/v1/auth/signup",
            {},
            {"json": {"email": "new2@example.com", "password": "correct-horse-battery"}},
        ),
        (
            "POST",
            "/api/v1/auth/login",
            "/api/v1/auth/login",
            {},
            {"json": {"email": w["spare"]["email"], "password": w["spare"]["password"]}},
        ),
        (
            "POST",
            "/api/v1/auth/token",
            "/api/v1/auth/token",
            {},
            {"data": {"username": w["spare"]["username"], "password": w["spare"]["password"]}},
        ),
        ("POST", "/api/v1/auth/refresh", "/api/v1/auth/refresh", w["spare_refresh"], {}),
        ("GET", "/api/v1/auth/me", "/api/v1/auth/me", w["user"], {}),
        ("GET", "/api/v1/me", "/api/v1/me", w["user"], {}),
        (
            "PATCH",
            "/api/v1/me",
            "/api/v1/me",
            w["user"],
            {"json": {"display_name": "Pat", "settings": {"theme": "dark"}}},
        ),
        (
            "POST",
            "/api/v1/chat",
            "/api/v1/chat",
            w["user"],
            {"json": {"content": "What about money?", "chat_id": chat}},
        ),
        (
            "POST",
            "/api/v1/chat/stream",
            "/api/v1/chat/stream",
            w["user"],
            {"json": {"message": "And rest?", "session_id": chat}},
        ),
        ("GET", "/api/v1/chats", "/api/v1/chats", w["user"], {"query_string": {"per_page": 5}}),
        ("GET", "/api/v1/chats/{chat_id}", f"/api/v1/chats/{chat}", w["user"], {}),
        (
            "PATCH",
            "/api/v1/chats/{chat_id}",
            f"/api/v1/chats/{chat}",
            w["user"],
            {"json": {"title": "Money talk"}},
        ),
        (
            "GET",
            "/api/v1/messages/{message_id}/events",
            f"/api/v1/messages/{msg}/events",
            {**w["user"], "Last-Event-ID": "2"},
            {},
        ),
        (
            "POST",
            "/api/v1/messages/{message_id}/feedback",
            f"/api/v1/messages/{msg}/feedback",
            w["user"],
            {"json": {"rating": "up", "comment": "clear", "citation_id": w["citation_id"]}},
        ),
        ("GET", "/api/v1/documents/namespaces", "/api/v1/documents/namespaces", w["admin"], {}),
        (
            "POST",
            "/api/v1/namespaces",
            "/api/v1/namespaces",
            w["admin"],
            {"json": {"name": "gardening", "description": "Plants", "keywords": ["soil"]}},
        ),
        (
            "POST",
            "/api/v1/namespaces/{name}/reindex",
            "/api/v1/namespaces/general/reindex",
            w["admin"],
            {},
        ),
        (
            "GET",
            "/api/v1/documents/",
            "/api/v1/documents/",
            w["admin"],
            {"query_string": {"namespace": "general", "limit": 2}},
        ),
        ("GET", "/api/v1/documents", "/api/v1/documents", w["admin"], {}),
        ("POST", "/api/v1/documents/", "/api/v1/documents/", w["admin"], {"json": text}),
        (
            "POST",
            "/api/v1/documents",
            "/api/v1/documents",
            w["admin"],
            {"json": {**text, "content": "Sweep the step, then sit.", "tags": ["calm"]}},
        ),
        (
            "POST",
            "/api/v1/documents/upload",
            "/api/v1/documents/upload",
            w["admin"],
            {
                "data": {
                    "namespace": "general",
                    "youtube_url": VIDEO,
                    "tags": "a,b",
                    "file": (io.BytesIO(b"[00:00:05] Breathe out slowly."), "talk.txt"),
                },
                "content_type": "multipart/form-data",
            },
        ),
        ("GET", "/api/v1/documents/{document_id}", f"/api/v1/documents/{doc}", w["admin"], {}),
        (
            "PUT",
            "/api/v1/documents/{document_id}",
            f"/api/v1/documents/{doc}",
            w["admin"],
            {"json": {"title": "Renamed", "source_url": "https://example.com/a"}},
        ),
        (
            "PATCH",
            "/api/v1/documents/{document_id}",
            f"/api/v1/documents/{doc}",
            w["admin"],
            {"json": {"tags": ["x"]}},
        ),
        (
            "POST",
            "/api/v1/documents/{document_id}/reindex",
            f"/api/v1/documents/{doc}/reindex",
            w["admin"],
            {},
        ),
        ("GET", "/api/v1/admin/stats", "/api/v1/admin/stats", w["admin"], {}),
        ("GET", "/api/v1/admin/unanswered", "/api/v1/admin/unanswered", w["admin"], {}),
        ("GET", "/api/v1/admin/feedback", "/api/v1/admin/feedback", w["admin"], {}),
        (
            "GET",
            "/api/v1/admin/users",
            "/api/v1/admin/users",
            w["admin"],
            {"query_string": {"q": "viewer", "role": "viewer"}},
        ),
        (
            "PATCH",
            "/api/v1/admin/users/{user_id}",
            f"/api/v1/admin/users/{w['spare_id']}",
            w["admin"],
            {"json": {"role": "user"}},
        ),
        (
            "POST",
            "/api/v1/me/password",
            "/api/v1/me/password",
            w["user"],
            {
                "json": {
                    "current_password": w["person"]["password"],
                    "new_password": "a-new-long-password",
                }
            },
        ),
        ("DELETE", "/api/v1/documents/{document_id}", f"/api/v1/documents/{doc}", w["admin"], {}),
        ("DELETE", "/api/v1/chats/{chat_id}", f"/api/v1/chats/{chat}", None, {}),
        (
            "DELETE",
            "/api/v1/admin/users/{user_id}",
            f"/api/v1/admin/users/{w['spare_id']}",
            w["admin"],
            {},
        ),
        ("POST", "/api/v1/auth/logout", "/api/v1/auth/logout", w["admin"], {}),
    ]


def test_every_operation_answers_as_documented(world, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operations = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    table = cases(world)
    assert {(m, p) for m, p, *_ in table} == operations, "one case per documented operation"
    relogin = None
    for method, path, url, headers, kwargs in table:
        if headers is None:  # the user's tokens ended with the password change above
            relogin = (
                relogin
                or client.post(
                    "/api/v1/auth/login",
                    json={"email": world["person"]["email"], "password": "a-new-long-password"},
                ).get_json()
            )
            headers = {"Authorization": f"Bearer {relogin['access_token']}"}
        reply = client.open(url, method=method, headers=headers, **kwargs)
        assert reply.status_code < 400, f"{method} {url}: {reply.get_data(as_text=True)[:400]}"
        check(spec, method, path, reply)


def test_documented_422s_are_the_error_shape(world, client):
    """Each operation with a documented 422 gets one for a wrongly typed field, with `fields`."""
    spec = client.get("/api/v1/openapi.json").get_json()
    w = world
    bad = [
        ("POST", "/api/v1/auth/login", {}, {"json": {"email": 1, "password": 2}}, "email"),
        ("PATCH", "/api/v1/me", w["user"], {"json": {"display_name": 5}}, "display_name"),
        ("POST", "/api/v1/chat", w["user"], {"json": {"content": ["x"]}}, "content"),
        ("GET", "/api/v1/chats", w["user"], {"query_string": {"page": "x"}}, "page"),
        ("POST", "/api/v1/documents/", w["admin"], {"json": {"title": "t"}}, "namespace"),
        ("GET", "/api/v1/documents/", w["admin"], {"query_string": {"limit": 0}}, "limit"),
        ("PATCH", "/api/v1/admin/users/1", w["admin"], {"json": {"is_active": "yes"}}, "is_active"),
    ]
    for method, url, headers, kwargs, field in bad:
        reply = client.open(url, method=method, headers=headers, **kwargs)
        assert reply.status_code == 422, (url, reply.get_json())
        path = url if url in spec["paths"] else url.rsplit("/", 1)[0] + "/{user_id}"
        assert "422" in spec["paths"][path][method.lower()]["responses"], (method, path)
        check(spec, method, path, reply)
        assert reply.get_json()["error"]["fields"][0]["field"] == field, reply.get_json()


def test_message_limit_in_the_document_is_the_configured_one(tmp_path):
    from tests.conftest import close_app, make_app

    app = make_app(tmp_path, MAX_MESSAGE_CHARS=1234)
    try:
        spec = app.test_client().get("/api/v1/openapi.json").get_json()
        content = spec["components"]["schemas"]["ChatRequest"]["properties"]["content"]
        assert content["maxLength"] == 1234
        delete = spec["paths"]["/api/v1/chats/{chat_id}"]["delete"]["responses"]
        assert "204" in delete and "200" not in delete
    finally:
        close_app(app)


def test_sign_in_aliases_share_the_login_rate_limit(app):
    """Routes are named per rule by the schema library; the stricter sign-in bucket must still
    cover every path that signs in or registers (signup was once left out)."""
    from wwhd.limits import AUTH_ENDPOINTS

    endpoints = {rule.rule: rule.endpoint for rule in app.url_map.iter_rules()}
    for path in ("login", "token", "register", "signup"):
        assert endpoints[f"/api/v1/auth/{path}"] in AUTH_ENDPOINTS, path
