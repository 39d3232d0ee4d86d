"""Races on PostgreSQL through a real threaded HTTP server: one winner, clean 409s, never a 5xx."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from tests.conftest import Auth, close_app, make_app
from wwhd.extensions import db
from wwhd.models import (
    Chat,
    Citation,
    Document,
    Feedback,
    Message,
    Namespace,
    UnansweredQuestion,
    User,
)

PARALLEL = 30


@pytest.fixture
def server(tmp_path, postgres_db):
    """The app on a fresh PostgreSQL database behind werkzeug's threaded server (a thread per
    request, each with its own session and transaction), on a free loopback port."""
    app = make_app(
        tmp_path,
        DATABASE_URL=postgres_db,
        # One connection per in-flight request, so the requests really overlap in the database.
        SQLALCHEMY_ENGINE_OPTIONS={
            "pool_pre_ping": True,
            "hide_parameters": True,
            "pool_size": PARALLEL,
            "max_overflow": 5,
        },
    )
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    with httpx.Client(
        base_url=f"http://127.0.0.1:{http.server_port}/api/v1",
        timeout=60,
        limits=httpx.Limits(max_connections=PARALLEL * 2),
    ) as client:
        yield app, client
    http.shutdown()
    http.server_close()
    thread.join()
    close_app(app)


def all_at_once(send, n: int = PARALLEL) -> list[httpx.Response]:
    """`send(i)` from n threads released together by a barrier; the responses in order."""
    barrier = threading.Barrier(n)

    def one(i: int) -> httpx.Response:
        barrier.wait()
        return send(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def statuses(replies: list[httpx.Response]) -> Counter:
    return Counter(reply.status_code for reply in replies)


def bearer(app, client, role: str = "user") -> tuple[dict, dict]:
    user = Auth(app, None).create(role)
    reply = client.post("/auth/login", json={"email": user["email"], "password": user["password"]})
    assert reply.status_code == 200, reply.text
    return user, {"Authorization": f"Bearer {reply.json()['access_token']}"}


def count(app, query) -> int:
    with app.app_context():
        return db.session.scalar(query)


def assert_conflicts_are_json(replies: list[httpx.Response]) -> None:
    for reply in replies:
        if reply.status_code == 409:
            assert reply.json()["error"]["code"] == "CONFLICT", reply.text


def test_one_email_registered_from_many_requests_at_once(server):
    app, client = server
    body = {"email": "race@example.com", "username": "racer", "password": "long-enough-pw"}
    replies = all_at_once(lambda i: client.post("/auth/register", json=body))
    assert statuses(replies) == {201: 1, 409: PARALLEL - 1}, statuses(replies)
    assert_conflicts_are_json(replies)
    assert all(
        "already registered" in reply.json()["detail"]
        for reply in replies
        if reply.status_code == 409
    )
    assert count(app, select(func.count(User.id)).where(User.email == "race@example.com")) == 1


def test_concurrent_turns_in_one_chat_are_all_kept_in_order(server):
    app, client = server
    _, headers = bearer(app, client)
    question = (
        "How do quantum computers factor large numbers?"  # not covered: counted as unanswered
    )
    first = client.post("/chat", json={"content": question}, headers=headers)
    assert first.status_code == 200, first.text
    chat_id = first.json()["chat_id"]

    replies = all_at_once(
        lambda i: client.post(
            "/chat", json={"content": question, "chat_id": chat_id}, headers=headers
        )
    )
    assert statuses(replies) == {200: PARALLEL}, [r.text for r in replies if r.status_code != 200]
    with app.app_context():
        messages = db.session.scalars(
            select(Message).where(Message.chat_id == chat_id).order_by(Message.seq)
        ).all()
        # Every turn: its question and its answer, on consecutive seqs, none lost or merged.
        assert [m.seq for m in messages] == list(range(1, 2 * (PARALLEL + 1) + 1))
        assert [m.role for m in messages] == ["user", "assistant"] * (PARALLEL + 1)
        assert all(m.status == "complete" for m in messages)
        answered = {r.json()["message_id"] for r in replies} | {first.json()["message_id"]}
        assert answered == {m.id for m in messages if m.role == "assistant"}
        asked = db.session.scalars(select(UnansweredQuestion)).all()
        assert [row.count for row in asked] == [PARALLEL + 1]


def test_identical_uploads_at_once_make_one_document(server):
    app, client = server
    _, headers = bearer(app, client, "admin")
    content = b"[00:00:01] One talk uploaded by many admins at the same moment.\n" * 20

    replies = all_at_once(
        lambda i: client.post(
            "/documents/upload",
            files={"file": ("talk.txt", content, "text/plain")},
            data={"namespace": "general"},
            headers=headers,
        )
    )
    assert statuses(replies) == {202: 1, 409: PARALLEL - 1}, statuses(replies)
    assert_conflicts_are_json(replies)
    created = next(r for r in replies if r.status_code == 202).json()["id"]
    assert {r.json()["duplicate_of"]["id"] for r in replies if r.status_code == 409} == {created}
    assert count(app, select(func.count(Document.id))) == 1


def test_one_namespace_created_from_many_requests_at_once(server):
    app, client = server
    _, headers = bearer(app, client, "admin")
    replies = all_at_once(
        lambda i: client.post(
            "/namespaces", json={"name": "race_topic", "keywords": ["race"]}, headers=headers
        )
    )
    assert statuses(replies) == {201: 1, 409: PARALLEL - 1}, statuses(replies)
    assert_conflicts_are_json(replies)
    assert count(app, select(func.count()).where(Namespace.name == "race_topic")) == 1


def test_the_same_feedback_posted_at_once_is_one_row(server):
    app, client = server
    _, headers = bearer(app, client)
    answer = client.post("/chat", json={"content": "What about money?"}, headers=headers).json()
    with app.app_context():
        citation = Citation(message_id=answer["message_id"], position=1, title="A talk")
        db.session.add(citation)
        db.session.commit()
        citation_id = citation.id
    path = f"/messages/{answer['message_id']}/feedback"

    for body in ({"rating": "down", "citation_id": citation_id}, {"rating": "up"}):
        replies = all_at_once(lambda i, body=body: client.post(path, json=body, headers=headers))
        # The first insert wins (201); every other request rates the same row again (200).
        assert statuses(replies) == {201: 1, 200: PARALLEL - 1}, statuses(replies)
        assert len({reply.json()["id"] for reply in replies}) == 1
    with app.app_context():
        rows = db.session.scalars(select(Feedback)).all()
        assert sorted((row.citation_id is None, row.rating) for row in rows) == [
            (False, "down"),
            (True, "up"),
        ]
        assert db.session.get(Chat, answer["chat_id"]) is not None
