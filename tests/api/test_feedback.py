"""Feedback on answers and citations: owner only, one rating per user+message(+citation)."""

from __future__ import annotations

from sqlalchemy import func, select

from wwhd.extensions import db
from wwhd.models import Feedback

COVERED = "How do my wife and I stop fighting about money?"


def ask(client, headers, content=COVERED) -> dict:
    reply = client.post("/api/v1/chat", json={"content": content}, headers=headers)
    assert reply.status_code == 200, reply.get_json()
    data = reply.get_json()
    chat = client.get(f"/api/v1/chats/{data['chat_id']}", headers=headers).get_json()
    answer = next(m for m in chat["messages"] if m["id"] == data["message_id"])
    return {
        "chat": chat,
        "answer": answer,
        "question": next(m for m in chat["messages"] if m["role"] == "user"),
    }


def rate(client, headers, message_id, **body):
    return client.post(f"/api/v1/messages/{message_id}/feedback", json=body, headers=headers)


def feedback_rows(app) -> list[Feedback]:
    with app.app_context():
        return db.session.scalars(select(Feedback).order_by(Feedback.id)).all()


def test_rating_an_answer_then_changing_it_keeps_one_row(samples, client, auth):
    headers = auth.headers()
    answer = ask(client, headers)["answer"]
    first = rate(client, headers, answer["id"], rating="up")
    assert first.status_code == 201
    assert first.get_json()["rating"] == "up" and first.get_json()["citation_id"] is None
    again = rate(client, headers, answer["id"], rating="down", comment="  Missed the point.  ")
    assert again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    rows = feedback_rows(samples)
    assert [(r.rating, r.comment) for r in rows] == [("down", "Missed the point.")]


def test_citation_feedback_is_separate_from_answer_feedback(samples, client, auth):
    headers = auth.headers()
    answer = ask(client, headers)["answer"]
    assert len(answer["citations"]) >= 2
    first, second = answer["citations"][0]["id"], answer["citations"][1]["id"]
    assert rate(client, headers, answer["id"], rating="up").status_code == 201
    assert rate(client, headers, answer["id"], rating="down", citation_id=first).status_code == 201
    assert rate(client, headers, answer["id"], rating="up", citation_id=second).status_code == 201
    assert rate(client, headers, answer["id"], rating="up", citation_id=first).status_code == 200
    rows = feedback_rows(samples)
    assert sorted((r.citation_id or 0, r.rating) for r in rows) == sorted(
        [(0, "up"), (first, "up"), (second, "up")]
    )


def test_other_users_get_404_and_nothing_is_written(samples, client, auth):
    answer = ask(client, auth.headers())["answer"]
    stranger = auth.headers()
    reply = rate(client, stranger, answer["id"], rating="down")
    assert reply.status_code == 404 and reply.get_json()["error"]["code"] == "NOT_FOUND"
    assert rate(client, stranger, "no-such-message", rating="down").status_code == 404
    assert rate(client, auth.headers("admin"), answer["id"], rating="down").status_code == 404
    assert feedback_rows(samples) == []


def test_requires_login(samples, client, auth):
    answer = ask(client, auth.headers())["answer"]
    assert (
        client.post(f"/api/v1/messages/{answer['id']}/feedback", json={"rating": "up"}).status_code
        == 401
    )


def test_bad_bodies_are_clear_4xx(samples, client, auth):
    headers = auth.headers()
    asked = ask(client, headers)
    answer_id = asked["answer"]["id"]
    cases = [
        ({"rating": "meh"}, "rating"),
        ({}, "rating"),
        ({"rating": "up", "comment": 5}, "comment"),
        ({"rating": "up", "comment": "x" * 2001}, "comment"),
        ({"rating": "up", "citation_id": "1"}, "citation_id"),
        ({"rating": "up", "citation_id": True}, "citation_id"),
        ({"rating": "up", "citation_id": 999999}, "citation_id"),
        ({"rating": "up", "stars": 5}, "stars"),
    ]
    for body, field in cases:
        reply = rate(client, headers, answer_id, **body)
        assert reply.status_code == 422, (body, reply.get_json())
        assert reply.get_json()["error"]["fields"][0]["field"] == field, body
    not_json = client.post(f"/api/v1/messages/{answer_id}/feedback", data="up", headers=headers)
    assert not_json.status_code == 400
    own_question = rate(client, headers, asked["question"]["id"], rating="up")
    assert own_question.status_code == 422
    assert feedback_rows(samples) == []


def test_a_citation_of_another_answer_is_rejected(samples, client, auth):
    headers = auth.headers()
    one, two = (
        ask(client, headers)["answer"],
        ask(client, headers, "How do I do a horse stance?")["answer"],
    )
    foreign = two["citations"][0]["id"]
    reply = rate(client, headers, one["id"], rating="down", citation_id=foreign)
    assert reply.status_code == 422
    with samples.app_context():
        assert db.session.scalar(select(func.count(Feedback.id))) == 0
