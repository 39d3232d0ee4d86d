"""Degrade, don't crash: Qdrant down, the LLM failing, the database connection dropped."""

from __future__ import annotations

import psycopg
import pytest
from qdrant_client import QdrantClient

from tests.conftest import Auth, close_app, make_app
from tests.tests_support import load_samples_and_login
from wwhd import create_app
from wwhd.config import load_config
from wwhd.deps import build_deps
from wwhd.extensions import db
from wwhd.knowledge.index import KnowledgeIndex
from wwhd.knowledge.namespaces import seed_namespaces
from wwhd.models import Citation, Document, Message, UnansweredQuestion
from wwhd.pipeline import prompts

QUESTION = "How do my wife and I stop fighting about money?"


# -- Qdrant down ------------------------------------------------------------------------------------
@pytest.fixture
def qdrant_down_app(tmp_path):
    """The app with a real Qdrant client pointed at a closed loopback port: every call fails fast."""
    overrides = {
        "APP_ENV": "testing",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'down.db'}",
        "QDRANT_URL": "",
        "QDRANT_PATH": ":memory:",
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
        "MODEL_EMBED": "",
        "REDIS_URL": "",
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "UPLOADS_BUCKET_NAME": "",
        "JWT_SECRET": "test-secret-that-is-long-enough-0123456789",
    }
    client = QdrantClient(url="http://127.0.0.1:1", timeout=1, check_compatibility=False)
    index = KnowledgeIndex(client, "wwhd_chunks", None, 0, local=False)
    app = create_app(overrides, deps=build_deps(load_config(overrides), index=index))
    with app.app_context():
        db.create_all()
        seed_namespaces()
        db.session.commit()
    yield app
    close_app(app)
    client.close()


def test_chat_answers_without_retrieval_when_qdrant_is_down(qdrant_down_app, read_sse):
    app = qdrant_down_app
    client = app.test_client()
    headers = Auth(app, client).headers("user")
    reply = client.post("/api/v1/chat/stream", json={"content": QUESTION}, headers=headers)
    assert reply.status_code == 200
    events = read_sse(reply.get_data(as_text=True))
    names = [e["event"] for e in events]
    assert names[0] == "start" and names[-1] == "done" and "error" not in names
    citation = next(e for e in events if e["event"] == "citation")
    assert citation["data"]["citations"] == []  # no made-up sources
    text = "".join(e["data"]["content"] for e in events if e["event"] == "token")
    assert text == prompts.KB_UNAVAILABLE and "unavailable" in text
    as_json = client.post("/api/v1/chat", json={"content": QUESTION}, headers=headers)
    assert as_json.status_code == 200 and as_json.get_json()["citations"] == []
    assert "unavailable" in as_json.get_json()["content"]
    with app.app_context():
        saved = db.session.query(Message).filter_by(role="assistant").all()
        assert [m.status for m in saved] == ["complete", "complete"] and saved[
            0
        ].content == prompts.KB_UNAVAILABLE
        assert (
            db.session.query(Message).filter_by(role="user").count() == 2
        )  # the questions are kept
        assert db.session.query(Citation).count() == 0
        # An outage is not a gap in the knowledge base.
        assert db.session.query(UnansweredQuestion).count() == 0


def test_health_detailed_reports_degraded_when_qdrant_is_down(qdrant_down_app):
    client = qdrant_down_app.test_client()
    reply = client.get("/health/detailed")
    assert reply.status_code == 503
    body = reply.get_json()
    assert body["status"] == "degraded"
    assert (
        body["checks"]["qdrant"]["status"] == "down"
        and body["checks"]["database"]["status"] == "ok"
    )
    assert client.get("/health").status_code == 200  # liveness does no I/O: the task is not killed


def test_documents_are_kept_in_sql_when_qdrant_is_down(qdrant_down_app):
    app = qdrant_down_app
    client = app.test_client()
    headers = Auth(app, client).headers("admin")
    reply = client.post(
        "/api/v1/documents/",
        json={
            "namespace": "money",
            "title": "Envelopes",
            "content": "Put every paycheck into envelopes. " * 20,
        },
        headers=headers,
    )
    assert reply.status_code < 500, reply.get_json()
    with app.app_context():
        doc = db.session.query(Document).filter_by(title="Envelopes").one()
        assert (
            "envelopes" in doc.content.lower()
        )  # SQL is the system of record; reindex repairs Qdrant later


# -- LLM failures -----------------------------------------------------------------------------------
@pytest.fixture
def retry_app(tmp_path, fake_llm):
    app = make_app(
        tmp_path,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_llm.base_url,
        MODEL_CHAT="gpt-4o-mini",
        LLM_MAX_RETRIES=2,
        LLM_TIMEOUT_S=5,
    )
    yield app
    close_app(app)


def chat_calls(fake_llm) -> int:
    return sum(1 for r in fake_llm.requests if r["path"].endswith("/chat/completions"))


@pytest.mark.parametrize(
    "status,code", [(429, "LLM_RATE_LIMITED"), (500, "LLM_ERROR"), (503, "LLM_ERROR")]
)
def test_llm_errors_are_retried_then_reported_and_saved_as_failed(
    retry_app, fake_llm, read_sse, status, code
):
    client, headers = load_samples_and_login(retry_app)
    fake_llm.script(status=status)
    reply = client.post("/api/v1/chat/stream", json={"content": QUESTION}, headers=headers)
    assert reply.status_code == 200
    events = read_sse(reply.get_data(as_text=True))
    assert events[-1]["event"] == "error", [e["event"] for e in events]
    assert events[-1]["data"]["code"] == code and events[-1]["data"]["message"]
    assert "done" not in [e["event"] for e in events]
    assert chat_calls(fake_llm) == 1 + 2  # bounded: the first try and LLM_MAX_RETRIES more
    with retry_app.app_context():
        answer = db.session.query(Message).filter_by(role="assistant").one()
        assert answer.status == "failed" and code in (answer.error or "")
        assert (
            db.session.query(Message).filter_by(role="user").one().content == QUESTION
        )  # nothing lost


def test_a_transient_llm_error_is_retried_transparently(retry_app, fake_llm, read_sse):
    from tests.fakes.openai_server import Script

    client, headers = load_samples_and_login(retry_app)
    fake_llm.queue(Script(status=503))
    fake_llm.script(tokens=["Fight ", "fair [1]."])
    events = read_sse(
        client.post("/api/v1/chat/stream", json={"content": QUESTION}, headers=headers).get_data(
            as_text=True
        )
    )
    assert events[-1]["event"] == "done"
    assert "".join(e["data"]["content"] for e in events if e["event"] == "token").startswith(
        "Fight fair [1]."
    )
    assert chat_calls(fake_llm) == 2
    with retry_app.app_context():
        assert db.session.query(Message).filter_by(role="assistant").one().status == "complete"


def test_llm_timeout_is_bounded_and_reported(tmp_path, fake_llm, read_sse):
    app = make_app(
        tmp_path,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_llm.base_url,
        LLM_MAX_RETRIES=1,
        LLM_TIMEOUT_S=1,
    )
    try:
        client, headers = load_samples_and_login(app)
        fake_llm.script(tokens=["slow"], delay=2.5)
        reply = client.post("/api/v1/chat", json={"content": QUESTION}, headers=headers)
        assert reply.status_code == 503
        assert reply.get_json()["error"]["code"] == "LLM_TIMEOUT"
        # A stream that stalls after its headers is not retried (tokens may already be on screen).
        assert 1 <= chat_calls(fake_llm) <= 2
        with app.app_context():
            assert db.session.query(Message).filter_by(role="assistant").one().status == "failed"
    finally:
        close_app(app)


# -- PostgreSQL connection lost ---------------------------------------------------------------------
def terminate_backends(database_url: str) -> int:
    """Kill every server connection to the app's database, as a PostgreSQL restart or failover would."""
    name = database_url.rsplit("/", 1)[1]
    admin = database_url.rsplit("/", 1)[0].replace("+psycopg", "") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return sum(1 for (killed,) in rows if killed)


def test_requests_recover_after_the_database_drops_connections(tmp_path, postgres_db, read_sse):
    app = make_app(tmp_path, DATABASE_URL=postgres_db)
    try:
        client = app.test_client()
        auth = Auth(app, client)
        user = auth.create("user")
        headers = {"Authorization": f"Bearer {auth.login(user)['access_token']}"}
        first = client.post("/api/v1/chat", json={"content": QUESTION}, headers=headers)
        assert first.status_code == 200
        assert terminate_backends(postgres_db) >= 1, (
            "the app should hold pooled connections to kill"
        )
        # Pre-ping notices the dead connections and replaces them: no 500 for the next caller.
        assert client.get("/api/v1/chats", headers=headers).status_code == 200
        assert client.get("/health/detailed").get_json()["checks"]["database"]["status"] == "ok"
        assert terminate_backends(postgres_db) >= 1
        events = read_sse(
            client.post(
                "/api/v1/chat/stream",
                json={"content": "and then?", "chat_id": first.get_json()["chat_id"]},
                headers=headers,
            ).get_data(as_text=True)
        )
        assert events[-1]["event"] == "done"
        assert terminate_backends(postgres_db) >= 1
        assert auth.login(user)["access_token"]
        with app.app_context():
            assert db.session.query(Message).count() == 4  # both turns, nothing lost
    finally:
        close_app(app)
