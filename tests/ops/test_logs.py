"""JSON logs: one object per line with request id and user id, and never a secret or a message text."""

from __future__ import annotations

import io
import json
import logging

import pytest

from tests.conftest import close_app, make_app
from wwhd.logs import JsonFormatter, RequestContextFilter

PASSWORD = "Sup3r-Secret-Passw0rd-7781"
WRONG_PASSWORD = "Wr0ng-Guess-Passw0rd-5512"
API_KEY = "sk-test-LOGSCAN-9f8e7d6c5b4a39281706"
JWT_SECRET = "jwt-secret-LOGSCAN-0123456789abcdefghijklmnop"
# On topic enough to be answered (so it reaches the LLM), with secrets in it.
MESSAGE = (
    "My wife Quennell and I keep fighting about money and spending, and our budget talks end in "
    "arguments about money and savings (PIN 4417-ZQX). How do we stop fighting about money?"
)


@pytest.fixture
def captured():
    """Everything logged anywhere (root and the metrics logger), formatted as production formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    root, emf = logging.getLogger(), logging.getLogger("wwhd.metrics")
    raw = logging.StreamHandler(stream)  # EMF lines are written as-is
    old_level = root.level
    root.addHandler(handler)
    emf.addHandler(raw)
    root.setLevel(logging.DEBUG)  # dev runs at DEBUG: nothing may leak there either
    yield stream
    root.removeHandler(handler)
    emf.removeHandler(raw)
    root.setLevel(old_level)


@pytest.fixture
def secret_app(tmp_path, fake_llm):
    app = make_app(
        tmp_path,
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=fake_llm.base_url,
        JWT_SECRET=JWT_SECRET,
        LLM_MAX_RETRIES=0,
        LLM_TIMEOUT_S=5,
        LOG_LEVEL="DEBUG",
    )
    result = app.test_cli_runner().invoke(args=["wwhd", "load-samples"])
    assert result.exit_code == 0, result.output
    yield app
    close_app(app)


def test_representative_flows_leave_no_secrets_in_logs(secret_app, fake_llm, captured):
    client = secret_app.test_client()
    secrets = [PASSWORD, WRONG_PASSWORD, API_KEY, JWT_SECRET, MESSAGE, "4417-ZQX", "Quennell"]

    registered = client.post(
        "/api/v1/auth/register",
        json={"email": "logscan@example.com", "username": "logscan", "password": PASSWORD},
    )
    assert registered.status_code == 201
    assert (
        client.post(
            "/api/v1/auth/login", json={"email": "logscan@example.com", "password": WRONG_PASSWORD}
        ).status_code
        == 401
    )
    assert (
        client.post(
            "/api/v1/auth/token", data={"username": "logscan", "password": WRONG_PASSWORD}
        ).status_code
        == 401
    )
    login = client.post(
        "/api/v1/auth/login", json={"email": "logscan@example.com", "password": PASSWORD}
    ).get_json()
    secrets += [
        login["access_token"],
        login["refresh_token"],
        registered.get_json()["access_token"],
        registered.get_json()["refresh_token"],
    ]
    headers = {"Authorization": f"Bearer {login['access_token']}"}

    stream = client.post("/api/v1/chat/stream", json={"content": MESSAGE}, headers=headers)
    assert stream.status_code == 200 and "event: done" in stream.get_data(as_text=True)
    fake_llm.script(status=500, times=1)  # the failure path logs too
    failed = client.post("/api/v1/chat", json={"content": MESSAGE}, headers=headers)
    assert failed.status_code == 503
    too_long = client.post("/api/v1/chat", json={"content": MESSAGE * 100}, headers=headers)
    assert too_long.status_code == 422

    refreshed = client.post(
        "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {login['refresh_token']}"}
    )
    assert refreshed.status_code == 200
    secrets.append(refreshed.get_json()["access_token"])
    bad = client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {login['access_token']}x"}
    )
    assert bad.status_code == 401
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 200
    assert (
        client.post(
            "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {login['refresh_token']}"}
        ).status_code
        == 401
    )

    # The fake LLM did receive the message and the key: the scan below is meaningful.
    assert any(MESSAGE in json.dumps(r["json"]) for r in fake_llm.requests)
    assert any(API_KEY in r["headers"].get("authorization", "") for r in fake_llm.requests)

    text = captured.getvalue()
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) > 20
    for secret in secrets:
        assert secret not in text, f"secret leaked into logs: {secret[:12]}…"
    # JWTs are three base64url parts; the header part of ours is always the same.
    assert login["access_token"].split(".")[0] + "." not in text

    records = [json.loads(line) for line in lines]  # one JSON object per line
    access = [r for r in records if r.get("logger") == "wwhd.access"]
    assert access and all(
        {"timestamp", "level", "request_id", "route", "status", "latency_ms"} <= set(r)
        for r in access
    )
    signed_in = [r for r in access if r["route"] == "/api/v1/chat/stream"][0]
    assert isinstance(signed_in["user_id"], int)
    assert "logscan@example.com" not in text  # user id, never the email
    failure = [r for r in records if r.get("message") == "turn failed"]
    assert failure and failure[0]["request_id"]


def test_request_id_is_echoed_or_generated_and_logged(client, captured):
    echoed = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    generated = client.get("/health", headers={"X-Request-ID": "bad id with spaces {}"})
    assert (
        generated.headers["X-Request-ID"] != "bad id with spaces {}"
        and len(generated.headers["X-Request-ID"]) >= 16
    )
    records = [json.loads(line) for line in captured.getvalue().splitlines() if line.strip()]
    ids = {r.get("request_id") or r.get("RequestId") for r in records}
    assert {"abc-123", generated.headers["X-Request-ID"]} <= ids


LEAK_TRIGGERS = """
CREATE FUNCTION echo_values() RETURNS trigger AS $$
BEGIN
  IF TG_TABLE_NAME = 'users' THEN
    -- What PostgreSQL itself says on a unique violation, with the hash added for good measure.
    RAISE EXCEPTION USING ERRCODE = 'unique_violation',
      MESSAGE = 'duplicate key value violates unique constraint "ix_users_email"',
      CONSTRAINT = 'ix_users_email',
      DETAIL = 'Key (email, password_hash)=(' || NEW.email || ', ' || NEW.password_hash
               || ') already exists.';
  END IF;
  RAISE EXCEPTION 'cannot store message %', NEW.content;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER users_echo BEFORE INSERT ON users
  FOR EACH ROW WHEN (NEW.email LIKE 'echo%') EXECUTE FUNCTION echo_values();
CREATE TRIGGER messages_echo BEFORE INSERT ON messages
  FOR EACH ROW WHEN (NEW.content LIKE '%PIN%') EXECUTE FUNCTION echo_values();
"""


def test_database_errors_never_log_the_values_they_reject(tmp_path, postgres_db, captured):
    # PostgreSQL repeats rejected values in its errors (DETAIL: Key (email)=(…)); the statement's
    # parameters carry the e-mail, the argon2 hash and the message. Triggers make the database
    # echo all of them, as a unique violation on register and as a failure saving a turn.
    from sqlalchemy import text

    from tests.conftest import Auth
    from wwhd.extensions import db

    app = make_app(tmp_path, DATABASE_URL=postgres_db, LOG_LEVEL="DEBUG")
    with app.app_context():
        db.session.execute(text(LEAK_TRIGGERS))
        db.session.commit()
    client = app.test_client()
    email = "echo.leak@example.com"
    conflict = client.post(
        "/api/v1/auth/register",
        json={"email": email, "username": "echoleak", "password": PASSWORD},
    )
    assert conflict.status_code == 409, conflict.get_json()
    assert conflict.get_json()["error"]["code"] == "CONFLICT"

    user = Auth(app, client).create("user")
    headers = {"Authorization": f"Bearer {Auth(app, client).login(user)['access_token']}"}
    failed = client.post("/api/v1/chat", json={"content": MESSAGE}, headers=headers)
    assert failed.status_code == 500 and failed.get_json()["error"]["code"] == "INTERNAL_ERROR"
    assert client.post("/api/v1/chat", json={"content": "fine"}, headers=headers).status_code == 200

    text_logged = captured.getvalue()
    records = [json.loads(line) for line in text_logged.splitlines() if line.strip()]
    conflicts = [r for r in records if r.get("message") == "integrity conflict"]
    assert conflicts and conflicts[0]["sqlstate"] == "23505"
    assert conflicts[0]["constraint"] == "ix_users_email"
    crashed = [r for r in records if r.get("message") == "unhandled error"]
    # The traceback is still there, naming the error; only its message is withheld.
    assert crashed and "start_turn" in crashed[0]["exception"]
    assert "psycopg.errors.RaiseException: [message withheld" in crashed[0]["exception"]
    for secret in (email, "echoleak", "$argon2", PASSWORD, MESSAGE, "4417-ZQX", "Quennell"):
        assert secret not in text_logged, f"leaked into logs: {secret[:16]}"
    close_app(app)
