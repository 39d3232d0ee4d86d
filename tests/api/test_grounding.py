"""Grounding end to end: "not covered" with no sources, and saved sources are the cited ones."""

from __future__ import annotations

from sqlalchemy import select

from wwhd.extensions import db
from wwhd.models import Message
from wwhd.models.conversations import UnansweredQuestion
from wwhd.pipeline import prompts

COVERED = "How do my wife and I stop fighting about money?"


def stream(client, headers, content):
    response = client.post("/api/v1/chat/stream", json={"content": content}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def test_berlin_wall_gets_no_sources_and_the_not_covered_reply(samples, client, auth, read_sse):
    events = read_sse(
        stream(client, auth.headers(), "In what year did the Berlin Wall fall?").get_data(
            as_text=True
        )
    )
    citation = next(e for e in events if e["event"] == "citation")
    assert citation["data"]["citations"] == []
    text = "".join(e["data"]["content"] for e in events if e["event"] == "token")
    assert text.startswith(prompts.NOT_COVERED)
    with client.application.app_context():
        assert db.session.scalars(select(UnansweredQuestion)).one().question.startswith("In what")


def test_offline_answer_cites_what_it_quotes_at_the_moment(samples, client, auth, read_sse):
    events = read_sse(stream(client, auth.headers(), COVERED).get_data(as_text=True))
    shown = next(e for e in events if e["event"] == "citation")["data"]["citations"]
    text = "".join(e["data"]["content"] for e in events if e["event"] == "token")
    assert shown and all(f"[{i}]" in text for i in range(1, len(shown) + 1))
    assert not text.lstrip().startswith("#")


def test_a_models_not_covered_reply_shows_and_saves_no_sources(llm_app, fake_llm, read_sse):
    from tests.tests_support import load_samples_and_login

    client, headers = load_samples_and_login(llm_app)
    fake_llm.script(tokens=["NOT_", "COVER", "ED"])
    events = read_sse(stream(client, headers, COVERED).get_data(as_text=True))
    names = [e["event"] for e in events]
    assert names[:2] == ["start", "citation"] and names[-1] == "done"
    assert events[1]["data"]["citations"] == []
    text = "".join(e["data"]["content"] for e in events if e["event"] == "token")
    assert text == prompts.NOT_COVERED and "NOT_COVERED" not in text
    with llm_app.app_context():
        reply = db.session.get(Message, events[0]["data"]["message_id"])
        assert reply.citations == [] and reply.content == prompts.NOT_COVERED
        unanswered = db.session.scalars(select(UnansweredQuestion)).all()
        assert [u.question for u in unanswered] == [COVERED]


def test_a_models_answer_saves_only_the_sources_it_cites(llm_app, fake_llm, read_sse):
    from tests.tests_support import load_samples_and_login

    client, headers = load_samples_and_login(llm_app)
    fake_llm.script(tokens=["Keep ", "a money ", "date [2]."])
    events = read_sse(stream(client, headers, COVERED).get_data(as_text=True))
    shown = events[1]["data"]["citations"]
    assert len(shown) >= 2, "the stream shows the retrieved sources once the model answers"
    text = "".join(e["data"]["content"] for e in events if e["event"] == "token")
    assert text.startswith("Keep a money date [2].")
    with llm_app.app_context():
        reply = db.session.get(Message, events[0]["data"]["message_id"])
        assert [(c.position, c.chunk_id) for c in reply.citations] == [(2, shown[1]["chunk_id"])]
        assert db.session.scalars(select(UnansweredQuestion)).all() == []
