"""Attacks on the API: forged and stale tokens, other users' ids, role escalation, oversized input, brute force."""

from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
import pytest

from tests.conftest import Auth, close_app, make_app
from wwhd.extensions import db
from wwhd.models import Message

SECRET = "test-secret-that-is-long-enough-0123456789"  # make_app's JWT_SECRET


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def victim(client, auth):
    """A signed-in user with one chat, and a valid token to tamper with."""
    user = auth.create("user")
    tokens = auth.login(user)
    reply = client.post(
        "/api/v1/chat",
        json={"content": "How do I handle money?"},
        headers=bearer(tokens["access_token"]),
    )
    assert reply.status_code == 200, reply.get_json()
    return {
        "user": user,
        "tokens": tokens,
        "chat_id": reply.get_json()["chat_id"],
        "claims": claims_of(tokens["access_token"]),
    }


def assert_refused(client, token: str):
    reply = client.get("/api/v1/auth/me", headers=bearer(token))
    assert reply.status_code == 401, reply.get_json()
    assert reply.get_json()["error"]["code"] == "UNAUTHORIZED"
    listing = client.get("/api/v1/chats", headers=bearer(token))
    assert listing.status_code == 401


def test_the_untampered_token_works(client, victim):
    # The control for the tests below: only the tampering makes them fail.
    assert (
        client.get("/api/v1/auth/me", headers=bearer(victim["tokens"]["access_token"])).status_code
        == 200
    )
    resigned = pyjwt.encode(victim["claims"], SECRET, algorithm="HS256")
    assert client.get("/api/v1/auth/me", headers=bearer(resigned)).status_code == 200


def test_alg_none_is_refused(client, victim):
    escalated = {**victim["claims"], "role": "admin"}
    assert_refused(client, f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(escalated)}.")
    assert_refused(client, f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(victim['claims'])}.")


def test_wrong_signature_is_refused(client, victim):
    assert_refused(
        client,
        pyjwt.encode(victim["claims"], "another-secret-of-sufficient-length-42", algorithm="HS256"),
    )
    header, payload, signature = victim["tokens"]["access_token"].split(".")
    tampered = b64({**victim["claims"], "sub": str(int(victim["claims"]["sub"]) + 1)})
    assert_refused(client, f"{header}.{tampered}.{signature}")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_other_algorithms_are_refused(client, victim):
    assert_refused(client, pyjwt.encode(victim["claims"], SECRET, algorithm="HS512"))


@pytest.mark.parametrize("claim,value", [("aud", "someone-else"), ("iss", "evil"), ("exp", None)])
def test_wrong_audience_issuer_expiry_or_type_is_refused(client, victim, claim, value):
    claims = dict(victim["claims"])
    if claim == "exp":
        claims["iat"] = claims["nbf"] = int(time.time()) - 7200
        value = int(time.time()) - 3600
    claims[claim] = value
    assert_refused(client, pyjwt.encode(claims, SECRET, algorithm="HS256"))


def test_missing_audience_is_refused(client, victim):
    claims = {k: v for k, v in victim["claims"].items() if k != "aud"}
    assert_refused(client, pyjwt.encode(claims, SECRET, algorithm="HS256"))


def test_expired_token_says_so(client, victim):
    claims = {
        **victim["claims"],
        "iat": int(time.time()) - 7200,
        "nbf": int(time.time()) - 7200,
        "exp": int(time.time()) - 10,
    }
    reply = client.get(
        "/api/v1/auth/me", headers=bearer(pyjwt.encode(claims, SECRET, algorithm="HS256"))
    )
    assert reply.status_code == 401 and "expired" in reply.get_json()["detail"].lower()


def test_a_token_without_session_or_for_a_deleted_session_is_refused(client, victim):
    assert_refused(
        client,
        pyjwt.encode(
            {k: v for k, v in victim["claims"].items() if k != "sid"}, SECRET, algorithm="HS256"
        ),
    )
    assert_refused(
        client, pyjwt.encode({**victim["claims"], "sid": "made-up"}, SECRET, algorithm="HS256")
    )


def test_role_claim_cannot_escalate(client, victim):
    # Validly signed (a leaked secret aside, impossible) — the role still comes from the database.
    forged = pyjwt.encode({**victim["claims"], "role": "admin"}, SECRET, algorithm="HS256")
    reply = client.get("/api/v1/auth/me", headers=bearer(forged))
    assert reply.status_code == 200 and reply.get_json()["role"] == "user"


def test_refresh_token_reuse_after_logout_is_refused(client, victim):
    tokens = victim["tokens"]
    assert (
        client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"])).status_code
        == 200
    )
    again = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert again.status_code == 401 and again.get_json()["error"]["code"] == "UNAUTHORIZED"
    assert client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 401


def test_another_users_chat_is_indistinguishable_from_a_missing_one(client, auth, victim, app):
    intruder = auth.headers("user")
    chat_id = victim["chat_id"]
    missing = client.get("/api/v1/chats/does-not-exist", headers=intruder)
    for method, kwargs in (("get", {}), ("patch", {"json": {"title": "mine now"}}), ("delete", {})):
        reply = getattr(client, method)(f"/api/v1/chats/{chat_id}", headers=intruder, **kwargs)
        assert reply.status_code == 404, (method, reply.get_json())
        assert reply.get_json()["detail"] == missing.get_json()["detail"]
    hijack = client.post(
        "/api/v1/chat", json={"content": "continue", "chat_id": chat_id}, headers=intruder
    )
    assert hijack.status_code == 404
    assert chat_id not in json.dumps(client.get("/api/v1/chats", headers=intruder).get_json())
    owner = client.get(f"/api/v1/chats/{chat_id}", headers=bearer(victim["tokens"]["access_token"]))
    assert owner.status_code == 200 and owner.get_json()["title"] != "mine now"
    with app.app_context():
        assert (
            db.session.query(Message).filter_by(chat_id=chat_id).count() == 2
        )  # nothing lost, nothing added


def _routes(app, prefix: str) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(prefix):
            path = rule.rule
            for arg in rule.arguments:
                path = (
                    path.replace(f"<{arg}>", "1")
                    .replace(f"<int:{arg}>", "1")
                    .replace(f"<path:{arg}>", "1")
                )
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                found.append((method, path))
    return found


@pytest.mark.parametrize("prefix", ["/api/v1/admin", "/api/v1/documents", "/api/v1/namespaces"])
def test_admin_routes_refuse_users_and_viewers(app, client, auth, prefix):
    routes = _routes(app, prefix)
    assert routes, f"no {prefix} routes registered: the check would pass on nothing"
    for role in ("user", "viewer"):
        headers = auth.headers(role)
        for method, path in routes:
            reply = client.open(path, method=method, headers=headers, json={})
            assert reply.status_code == 403, (role, method, path, reply.status_code)
            assert reply.get_json()["error"]["code"] == "FORBIDDEN"
    for method, path in routes:
        assert client.open(path, method=method, json={}).status_code == 401


def test_another_users_documents_are_not_reachable(app, client, auth):
    # Documents belong to the knowledge base (admins); a user must not read or change any of them by id.
    routes = [
        (m, p) for m, p in _routes(app, "/api/v1/documents/") if p.rstrip("/").split("/")[-1] == "1"
    ]
    assert routes, "no /api/v1/documents/<id> routes registered: the check would pass on nothing"
    headers = auth.headers("user")
    for method, path in routes:
        assert client.open(path, method=method, headers=headers, json={}).status_code in (403, 404)


def test_viewers_cannot_chat(client, auth):
    reply = client.post("/api/v1/chat", json={"content": "hello"}, headers=auth.headers("viewer"))
    assert reply.status_code == 403


def test_oversized_bodies_are_413_json(client, auth):
    headers = auth.headers("user")
    huge = {"content": "x" * (2 * 1024 * 1024)}
    for path in ("/api/v1/chat", "/api/v1/chat/stream", "/api/v1/auth/login"):
        reply = client.post(path, json=huge, headers=headers)
        assert reply.status_code == 413, path
        assert reply.get_json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_too_long_chat_text_is_422_and_nothing_is_saved(client, auth, app):
    reply = client.post(
        "/api/v1/chat", json={"content": "word " * 2000}, headers=auth.headers("user")
    )
    assert reply.status_code == 422
    assert reply.get_json()["error"]["fields"][0]["field"] == "content"
    with app.app_context():
        assert db.session.query(Message).count() == 0


def test_chat_text_is_normalised_without_mangling(client, auth, app):
    text = "Caf\u00e9 \u2615 \u201cquotes\u201d \u4f60\u597d \U0001f600\nline two\ttab"
    reply = client.post(
        "/api/v1/chat", json={"content": f"\x00{text}\x07\u200b\x1b"}, headers=auth.headers("user")
    )
    assert reply.status_code == 200, reply.get_json()
    with app.app_context():
        question = db.session.query(Message).filter_by(role="user").one()
        assert question.content == text
    only_controls = client.post(
        "/api/v1/chat", json={"content": "\x00\x01\u200b "}, headers=auth.headers("user")
    )
    assert only_controls.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        None,
        "not json",
        [1, 2],
        {"content": 5},
        {"content": {"$ne": 1}},
        {"content": "hi", "chat_id": ["x"]},
        {"content": "hi", "namespace": "../../etc"},
    ],
)
def test_malformed_chat_bodies_are_clear_4xx(client, auth, body):
    headers = auth.headers("user")
    if isinstance(body, str):
        reply = client.post(
            "/api/v1/chat", data=body, content_type="application/json", headers=headers
        )
    else:
        reply = client.post("/api/v1/chat", json=body, headers=headers)
    assert 400 <= reply.status_code < 500
    assert reply.get_json()["detail"]


def test_brute_force_login_hits_429(tmp_path):
    app = make_app(tmp_path, RATE_LIMIT_LOGIN="5/minute")
    client = app.test_client()
    user = Auth(app, client).create("user")
    codes = [
        client.post(
            "/api/v1/auth/login", json={"email": user["email"], "password": f"guess-{n:04d}"}
        ).status_code
        for n in range(8)
    ]
    assert codes[:5] == [401] * 5 and codes[5:] == [429] * 3
    close_app(app)


def test_production_refuses_the_dev_jwt_secret(tmp_path):
    with pytest.raises(RuntimeError, match="JWT_SECRET"):
        make_app(tmp_path, APP_ENV="production", JWT_SECRET="dev-insecure-change-me")


def test_a_token_without_expiry_or_stamp_is_refused(client, victim):
    # Correctly signed, every other claim intact: only the missing claim makes it fail.
    for claim in ("exp", "stamp"):
        claims = {k: v for k, v in victim["claims"].items() if k != claim}
        assert_refused(client, pyjwt.encode(claims, SECRET, algorithm="HS256"))
    forged = pyjwt.encode({**victim["claims"], "stamp": "0" * 32}, SECRET, algorithm="HS256")
    assert_refused(client, forged)


def test_tokens_issued_before_a_deactivation_stay_dead_after_reactivation(client, auth, victim):
    admin = auth.headers("admin")
    target = f"/api/v1/admin/users/{victim['user']['id']}"
    tokens = victim["tokens"]
    assert client.patch(target, json={"is_active": False}, headers=admin).status_code == 200
    assert client.patch(target, json={"is_active": True}, headers=admin).status_code == 200
    assert_refused(client, tokens["access_token"])
    refresh = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert refresh.status_code == 401
    fresh = auth.login(victim["user"])["access_token"]
    assert client.get("/api/v1/auth/me", headers=bearer(fresh)).status_code == 200


def test_a_role_change_ends_tokens_issued_under_the_old_role(client, auth, victim):
    admin = auth.headers("admin")
    target = f"/api/v1/admin/users/{victim['user']['id']}"
    assert client.patch(target, json={"role": "viewer"}, headers=admin).status_code == 200
    assert_refused(client, victim["tokens"]["access_token"])
    # Saving the same role again changes nothing, so it ends no session.
    fresh = auth.login(victim["user"])["access_token"]
    assert client.patch(target, json={"role": "viewer"}, headers=admin).status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(fresh)).status_code == 200


def test_a_deleted_users_token_never_works_for_the_next_registrant(client, auth, victim, app):
    admin = auth.headers("admin")
    old_id = victim["user"]["id"]
    assert client.delete(f"/api/v1/admin/users/{old_id}", headers=admin).status_code == 204
    assert client.delete(f"/api/v1/admin/users/{old_id}", headers=admin).status_code == 404
    newcomer = client.post(
        "/api/v1/auth/register",
        json={"email": "next@example.com", "username": "next", "password": "long-enough-pw"},
    )
    assert newcomer.status_code == 201
    # AUTOINCREMENT: the freed id is not handed out again (SQLite reused it before).
    assert newcomer.get_json()["user"]["id"] > old_id
    assert_refused(client, victim["tokens"]["access_token"])
    with app.app_context():
        assert db.session.query(Message).count() == 0  # the deleted user's chat went with them


def test_an_admin_cannot_delete_their_own_account(client, auth):
    me = auth.create("admin")
    headers = bearer(auth.login(me)["access_token"])
    reply = client.delete(f"/api/v1/admin/users/{me['id']}", headers=headers)
    assert reply.status_code == 409
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200


def test_without_app_env_the_production_rules_apply(monkeypatch, tmp_path):
    from wwhd import create_app
    from wwhd.config import DEFAULT_JWT_SECRET

    monkeypatch.delenv("APP_ENV", raising=False)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'unset.db'}")
    monkeypatch.setenv("QDRANT_PATH", ":memory:")
    # The image sets no APP_ENV: it used to boot as dev, signing tokens with the public default.
    with pytest.raises(RuntimeError, match="APP_ENV=dev"):
        create_app()
    monkeypatch.setenv("JWT_SECRET", "s" * 48)
    app = create_app()
    assert app.config["APP_ENV"] == "production" and app.config["DEMO_USER"] is False
    with app.app_context():
        db.create_all()
    forged = pyjwt.encode(
        {
            "sub": "1",
            "type": "access",
            "role": "admin",
            "sid": "x",
            "stamp": "x",
            "exp": int(time.time()) + 600,
            "iss": "wwhd",
            "aud": "wwhd-users",
        },
        DEFAULT_JWT_SECRET,
        algorithm="HS256",
    )
    reply = app.test_client().get("/api/v1/admin/users", headers=bearer(forged))
    assert reply.status_code == 401
    close_app(app)
