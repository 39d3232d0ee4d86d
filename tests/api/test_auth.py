"""Auth flows: register, login (JSON and OAuth2 form), refresh, logout, whoami."""

from __future__ import annotations

from wwhd.extensions import db
from wwhd.models import AuthSession, User


def register(client, email="ann@example.com", password="correct-horse-battery", **extra):
    return client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, **extra}
    )


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_register_returns_tokens_and_a_plain_user(client, app):
    reply = register(
        client, username="ann", role="admin"
    )  # a self-registered user never picks a role
    assert reply.status_code == 201, reply.get_json()
    body = reply.get_json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert (
        body["access_token"]
        and body["refresh_token"]
        and body["access_token"] != body["refresh_token"]
    )
    assert body["user"]["email"] == "ann@example.com" and body["user"]["role"] == "user"
    assert "password" not in str(body["user"]) and "hash" not in str(body["user"])
    me = client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.get_json()["username"] == "ann"
    with app.app_context():
        user = db.session.query(User).one()
        assert user.password_hash.startswith("$argon2id$")  # never stored in clear


def test_signup_alias_and_username_defaults_to_the_email_name(client):
    reply = client.post(
        "/api/v1/auth/signup",
        json={"email": "Bob.Smith@Example.com", "password": "correct-horse-battery"},
    )
    assert reply.status_code == 201, reply.get_json()
    user = reply.get_json()["user"]
    assert user["email"] == "bob.smith@example.com" and user["username"] == "Bob.Smith"


def test_register_rejects_duplicates_and_bad_input_with_field_errors(client):
    assert register(client).status_code == 201
    again = register(client, email="ANN@example.com")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "CONFLICT"
    assert again.get_json()["error"]["fields"][0]["field"] == "email"
    short = register(client, email="new@example.com", password="short")
    assert short.status_code == 422
    assert short.get_json()["error"]["fields"][0]["field"] == "password"
    bad_email = register(client, email="not-an-email")
    assert bad_email.status_code == 422 and bad_email.get_json()["detail"]
    missing = client.post("/api/v1/auth/register", json={"email": "x@example.com"})
    assert missing.status_code == 422
    wrong_type = client.post(
        "/api/v1/auth/register", json={"email": ["x@example.com"], "password": "correct-horse"}
    )
    assert wrong_type.status_code == 422
    not_json = client.post("/api/v1/auth/register", data="email=x", content_type="text/plain")
    assert (
        not_json.status_code == 400 and not_json.get_json()["error"]["code"] == "VALIDATION_ERROR"
    )
    broken = client.post("/api/v1/auth/register", data="{", content_type="application/json")
    assert broken.status_code == 400
    array = client.post("/api/v1/auth/register", json=["a"])
    assert array.status_code == 400


def test_login_by_email_or_username_case_insensitive(client, auth):
    user = auth.create("user")
    for identifier in (user["email"].upper(), user["username"]):
        key = "email" if "@" in identifier else "username"
        reply = client.post(
            "/api/v1/auth/login", json={key: identifier, "password": user["password"]}
        )
        assert reply.status_code == 200, reply.get_json()
        assert reply.get_json()["user"]["id"] == user["id"]


def test_login_failures_do_not_reveal_which_part_was_wrong(client, auth):
    user = auth.create("user")
    wrong_password = client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": "wrong-password"}
    )
    unknown_user = client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong-password"}
    )
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.get_json()["detail"] == unknown_user.get_json()["detail"]
    empty = client.post("/api/v1/auth/login", json={"email": "", "password": ""})
    assert empty.status_code == 422


def test_oauth2_password_form(client, auth):
    user = auth.create("user")
    for identifier in (user["username"], user["email"]):
        reply = client.post(
            "/api/v1/auth/token", data={"username": identifier, "password": user["password"]}
        )
        assert reply.status_code == 200, reply.get_json()
        assert reply.get_json()["token_type"] == "bearer"
    assert client.post("/api/v1/auth/token", data={"username": user["username"]}).status_code == 422
    assert (
        client.post(
            "/api/v1/auth/token", data={"username": user["username"], "password": "nope-nope"}
        ).status_code
        == 401
    )


def test_refresh_issues_a_new_access_token_and_needs_a_refresh_token(client, auth):
    tokens = auth.login(auth.create("user"))
    assert (
        client.post("/api/v1/auth/refresh", headers=bearer(tokens["access_token"])).status_code
        == 401
    )
    reply = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert reply.status_code == 200, reply.get_json()
    fresh = reply.get_json()["access_token"]
    assert client.get("/api/v1/auth/me", headers=bearer(fresh)).status_code == 200
    # A refresh token is not an access token.
    assert client.get("/api/v1/auth/me", headers=bearer(tokens["refresh_token"])).status_code == 401


def test_logout_revokes_the_session_and_only_that_session(client, auth, app):
    user = auth.create("user")
    laptop, phone = auth.login(user), auth.login(user)
    reply = client.post("/api/v1/auth/logout", headers=bearer(laptop["access_token"]))
    assert reply.status_code == 200
    for token in (laptop["access_token"], laptop["refresh_token"]):
        for path, method in (("/api/v1/auth/me", "get"), ("/api/v1/auth/refresh", "post")):
            refused = getattr(client, method)(path, headers=bearer(token))
            assert refused.status_code == 401, (path, refused.get_json())
            assert refused.get_json()["error"]["code"] == "UNAUTHORIZED"
    assert client.get("/api/v1/auth/me", headers=bearer(phone["access_token"])).status_code == 200
    with app.app_context():
        sessions = db.session.query(AuthSession).filter_by(user_id=user["id"]).all()
        assert sorted(s.revoked_at is None for s in sessions) == [False, True]


def test_disabled_accounts_cannot_log_in_or_use_old_tokens(client, auth, app):
    user = auth.create("user")
    tokens = auth.login(user)
    with app.app_context():
        db.session.get(User, user["id"]).is_active = False
        db.session.commit()
    reply = client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": user["password"]}
    )
    assert reply.status_code == 403
    assert client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 401


def test_missing_or_malformed_authorization_is_401_json(client):
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": "Bearer " + "a" * 5000},
    ):
        reply = client.get("/api/v1/auth/me", headers=headers)
        assert reply.status_code == 401, headers
        body = reply.get_json()
        assert body["error"]["code"] == "UNAUTHORIZED" and body["detail"]


def test_auth_responses_are_not_cached(client):
    reply = register(client)
    assert reply.headers["Cache-Control"] == "no-store"


def login(client, identifier: str, password: str):
    return client.post("/api/v1/auth/login", json={"email": identifier, "password": password})


def test_an_account_backs_off_after_repeated_failures_and_says_nothing_new(tmp_path):
    from tests.conftest import Auth, close_app, make_app

    app = make_app(tmp_path, LOGIN_BACKOFF="3 per 15 minutes")
    client = app.test_client()
    users = Auth(app, client)
    target, bystander = users.create("user"), users.create("user")
    wrong = login(client, target["email"], "not-the-password")
    for _ in range(2):
        assert login(client, target["username"], "not-the-password").status_code == 401
    # Three failures (by e-mail or username alike): now even the right password gets exactly
    # the wrong-password answer, so a guesser cannot tell a lockout from a miss.
    locked = login(client, target["email"], target["password"])
    assert locked.status_code == 401
    assert locked.get_json()["detail"] == wrong.get_json()["detail"]
    assert locked.get_json()["error"]["code"] == wrong.get_json()["error"]["code"]
    assert set(locked.headers.keys()) == set(wrong.headers.keys())
    form = client.post(
        "/api/v1/auth/token", data={"username": target["username"], "password": target["password"]}
    )
    assert form.status_code == 401
    # Other accounts are untouched; an unknown name backs off the same way (no enumeration).
    assert login(client, bystander["email"], bystander["password"]).status_code == 200
    ghost = [login(client, "ghost@example.com", "whatever-it-is").get_json() for _ in range(4)]
    assert {g["detail"] for g in ghost} == {wrong.get_json()["detail"]}
    close_app(app)


def test_a_successful_login_clears_the_failure_count(tmp_path):
    from tests.conftest import Auth, close_app, make_app

    app = make_app(tmp_path, LOGIN_BACKOFF="3 per 15 minutes")
    client = app.test_client()
    user = Auth(app, client).create("user")
    for _ in range(3):
        for _ in range(2):
            assert login(client, user["email"], "not-the-password").status_code == 401
        assert login(client, user["email"], user["password"]).status_code == 200
    close_app(app)


def test_changing_the_password_ends_every_earlier_token(client, auth):
    user = auth.create("user")
    phone, laptop = auth.login(user), auth.login(user)
    path = "/api/v1/me/password"
    headers = bearer(laptop["access_token"])
    wrong = client.post(
        path, json={"current_password": "nope-nope", "new_password": "x" * 12}, headers=headers
    )
    assert wrong.status_code == 422
    assert wrong.get_json()["error"]["fields"][0]["field"] == "current_password"
    short = client.post(
        path, json={"current_password": user["password"], "new_password": "short"}, headers=headers
    )
    assert (
        short.status_code == 422 and short.get_json()["error"]["fields"][0]["field"] == "password"
    )

    changed = client.post(
        path,
        json={"current_password": user["password"], "new_password": "a-brand-new-passphrase"},
        headers=headers,
    )
    assert changed.status_code == 200, changed.get_json()
    for old in (phone, laptop):
        assert client.get("/api/v1/auth/me", headers=bearer(old["access_token"])).status_code == 401
        assert (
            client.post("/api/v1/auth/refresh", headers=bearer(old["refresh_token"])).status_code
            == 401
        )
    fresh = changed.get_json()["access_token"]
    assert client.get("/api/v1/auth/me", headers=bearer(fresh)).status_code == 200
    assert login(client, user["email"], user["password"]).status_code == 401
    assert login(client, user["email"], "a-brand-new-passphrase").status_code == 200
