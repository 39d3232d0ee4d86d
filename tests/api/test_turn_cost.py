"""What one streamed turn costs the database and the token check: counted, so a regression fails."""

from __future__ import annotations

import logging

from flask_jwt_extended import JWTManager
from sqlalchemy import event

from tests.conftest import close_app, make_app
from tests.tests_support import load_samples_and_login
from wwhd.extensions import db
from wwhd.models import Message

QUESTION = "How does the envelope system work for saving money?"


def _record_statements(app) -> list[str]:
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(_conn, _cursor, statement, *_rest):
        seen.append(" ".join(statement.split()[:4]).upper())

    @event.listens_for(engine, "commit")
    def _commit(_conn):
        seen.append("COMMIT")

    return seen


def test_a_streamed_turn_takes_nine_statements_and_two_commits(tmp_path, fake_llm, read_sse):
    """Auth (session + user in one query), quota, namespaces, the question (chat + 2 messages),
    commit; the answer (message, citations, usage, chat), commit. Was 14 statements."""
    app = make_app(
        tmp_path, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake_llm.base_url, LLM_MAX_RETRIES=0
    )
    try:
        client, headers = load_samples_and_login(app)
        seen = _record_statements(app)
        events = read_sse(
            client.post(
                "/api/v1/chat/stream", json={"content": QUESTION}, headers=headers
            ).get_data(as_text=True)
        )
        assert events[-1]["event"] == "done"
        statements = [s for s in seen if s != "COMMIT"]
        assert seen.count("COMMIT") == 2
        assert len(statements) <= 9, [s[:60] for s in seen]
        with app.app_context():
            reply = db.session.get(Message, events[-1]["data"]["message_id"])
            assert reply.status == "complete" and reply.content and reply.meta["llm_calls"] == 1
            assert reply.completed_at is not None and len(reply.citations) >= 1
    finally:
        close_app(app)


def test_the_bearer_token_is_decoded_once_per_request(app, auth, monkeypatch):
    """The rate limiter's key and the view's check share one decode (each one parses the token
    three times and checks its signature)."""
    headers = auth.headers("user")
    decodes = []
    base = JWTManager._decode_jwt_from_config

    def counting(self, *args, **kwargs):
        decodes.append(1)
        return base(self, *args, **kwargs)

    monkeypatch.setattr(JWTManager, "_decode_jwt_from_config", counting)
    client = app.test_client()
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert len(decodes) == 1
    # Another token in the next request is decoded (and refused) on its own.
    bad = {"Authorization": headers["Authorization"][:-4] + "AAAA"}
    assert client.get("/api/v1/me", headers=bad).status_code == 401


def test_sqlite_commits_without_an_fsync_each(app):
    """WAL with synchronous=NORMAL: a turn's two commits do not each stall the gevent worker."""
    from sqlalchemy import text

    with app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL


def test_an_llm_call_writes_no_log_line_of_its_own(tmp_path, fake_llm, read_sse):
    """httpx2 (the openai SDK's HTTP client) logs every request at INFO: a JSON line per LLM call
    (~0.2 ms of CPU) repeating what the access log and the metrics say. Quiet, as httpx was."""
    app = make_app(
        tmp_path, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake_llm.base_url, LLM_MAX_RETRIES=0
    )
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        client, headers = load_samples_and_login(app)
        events = read_sse(
            client.post(
                "/api/v1/chat/stream", json={"content": QUESTION}, headers=headers
            ).get_data(as_text=True)
        )
        assert events[-1]["event"] == "done"
        assert fake_llm.counters["chat_calls"] >= 1
        assert [r.name for r in records if r.name.startswith(("httpx", "httpcore"))] == []
    finally:
        root.removeHandler(handler)
        close_app(app)
