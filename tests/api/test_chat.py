"""Chat endpoints: SSE contract, persistence, failures, history, and the OpenAI-compatible path."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from wwhd.extensions import db
from wwhd.models import Message, TokenUsage

COVERED = "How do my wife and I stop fighting about money?"
NOT_COVERED = "Explain how quantum computers factor large numbers"


def stream(client, headers, content, **extra):
    return client.post("/api/v1/chat/stream", json={"content": content, **extra}, headers=headers)


def events_of(read_sse, response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return read_sse(response.get_data(as_text=True))


def test_stream_follows_the_sse_contract(samples, client, auth, read_sse):
    response = stream(client, auth.headers(), COVERED)
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    raw = response.get_data(as_text=True)
    assert raw.isascii()
    events = read_sse(raw)
    names = [e["event"] for e in events]
    assert names[0] == "start" and names[1] == "citation" and names[-2:] == ["metadata", "done"]
    # The offline answer's words arrive at once: coalesced into few frames (SSE_COALESCE_MS).
    assert set(names[2:-2]) == {"token"} and len(names) >= 5
    assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))
    for event in events:
        assert event["data"]["type"] == event["event"]
    start, done = events[0]["data"], events[-1]["data"]
    assert start["chat_id"] == done["chat_id"] and start["message_id"] == done["message_id"]
    metadata = events[-2]["data"]
    assert {"usage", "namespaces", "model", "timings"} <= set(metadata)
    assert "relationships" in metadata["namespaces"] or "money" in metadata["namespaces"]


def test_citations_deep_link_to_the_second(samples, client, auth, read_sse):
    events = events_of(read_sse, stream(client, auth.headers(), COVERED))
    citations = events[1]["data"]["citations"]
    assert len(citations) >= 2
    for cited in citations:
        assert {
            "title",
            "url",
            "youtube_url",
            "timestamp",
            "namespace",
            "document_id",
            "chunk_id",
            "score",
        } <= set(cited)
        if cited["youtube_url"]:
            seconds = int(re.search(r"[?&]t=(\d+)s", cited["url"]).group(1))
            h, m, s = (int(x) for x in cited["timestamp"].split(":"))
            assert seconds == h * 3600 + m * 60 + s
            assert re.search(r"watch\?v=[\w-]{11}&t=\d+s$", cited["url"])
    answer = "".join(e["data"]["content"] for e in events if e["event"] == "token")
    assert "[1]" in answer and "[2]" in answer


def test_not_covered_question_is_answered_honestly(samples, client, auth, read_sse, app):
    events = events_of(read_sse, stream(client, auth.headers(), NOT_COVERED))
    assert events[1]["event"] == "citation" and events[1]["data"]["citations"] == []
    answer = "".join(e["data"]["content"] for e in events if e["event"] == "token")
    assert "doesn't cover" in answer
    with app.app_context():
        from wwhd.models import UnansweredQuestion

        logged = db.session.scalars(select(UnansweredQuestion)).all()
        assert [row.question for row in logged] == [NOT_COVERED]


def test_messages_citations_and_usage_are_saved(samples, client, auth, read_sse, app):
    headers = auth.headers()
    events = events_of(read_sse, stream(client, headers, COVERED))
    message_id = events[0]["data"]["message_id"]
    answer = "".join(e["data"]["content"] for e in events if e["event"] == "token")
    with app.app_context():
        reply = db.session.get(Message, message_id)
        assert reply.status == "complete" and reply.content == answer
        assert len(reply.citations) == len(events[1]["data"]["citations"])
        question = db.session.scalar(
            select(Message).where(Message.chat_id == reply.chat_id, Message.role == "user")
        )
        assert question.content == COVERED and question.seq == reply.seq - 1
        assert db.session.scalars(
            select(TokenUsage).where(TokenUsage.message_id == message_id)
        ).all()


def test_follow_up_continues_the_chat_with_history(samples, client, auth, read_sse, app):
    headers = auth.headers()
    first = events_of(read_sse, stream(client, headers, "How should I set up my desk at home?"))
    chat_id = first[0]["data"]["chat_id"]
    second = events_of(
        read_sse, stream(client, headers, "and what about the bedroom?", chat_id=chat_id)
    )
    assert second[0]["data"]["chat_id"] == chat_id
    history = client.get(f"/api/v1/chats/{chat_id}", headers=headers).get_json()
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "user", "assistant"]
    assert second[1]["data"]["citations"], (
        "the follow-up should retrieve using the earlier question"
    )


def test_json_endpoint_runs_the_same_pipeline(samples, client, auth):
    headers = auth.headers()
    reply = client.post("/api/v1/chat", json={"message": COVERED}, headers=headers)
    assert reply.status_code == 200
    body = reply.get_json()
    assert body["chat_id"] and body["message_id"] and body["status"] == "complete"
    assert len(body["citations"]) >= 2 and "[1]" in body["content"]
    again = client.post(
        "/api/v1/chat",
        json={"content": "tell me more", "session_id": body["chat_id"]},
        headers=headers,
    )
    assert again.get_json()["chat_id"] == body["chat_id"]


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({}, 422, "required"),
        ({"content": ""}, 422, "empty"),
        ({"content": "   \u0000\u0007 "}, 422, "empty"),
        ({"content": 42}, 422, "string"),
        ({"content": "x" * 4001}, 422, "too long"),
        ({"content": "hi", "chat_id": 7}, 422, "chat_id"),
        ({"content": "hi", "namespace": "astrology"}, 422, "namespace"),
        (["content"], 400, "object"),
    ],
)
def test_bad_chat_input_is_a_clear_4xx(client, auth, body, status, fragment):
    headers = auth.headers()
    for path in ("/api/v1/chat/stream", "/api/v1/chat"):
        reply = client.post(path, json=body, headers=headers)
        assert reply.status_code == status, reply.get_json()
        payload = reply.get_json()
        assert fragment in payload["detail"] and payload["error"]["code"] == "VALIDATION_ERROR"


def test_bad_json_and_unknown_chat(client, auth):
    headers = auth.headers()
    raw = client.post(
        "/api/v1/chat/stream",
        data="{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert raw.status_code == 400 and "JSON" in raw.get_json()["detail"]
    missing = stream(client, headers, "hello", chat_id="00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "NOT_FOUND"


def test_oversized_body_is_413(client, auth):
    reply = client.post(
        "/api/v1/chat",
        data="x" * (12 * 1024 * 1024),
        headers={**auth.headers(), "Content-Type": "application/json"},
    )
    assert reply.status_code == 413 and reply.get_json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_viewer_cannot_chat_but_reads_history(client, auth):
    headers = auth.headers("viewer")
    assert stream(client, headers, "hello").status_code == 403
    assert client.get("/api/v1/chats", headers=headers).status_code == 200


def test_text_normalisation_keeps_legitimate_text(samples, client, auth, app):
    text = "Ça va? Grüße 👋 — \u201cquotes\u201d\nnew line\u0000"
    body = client.post("/api/v1/chat", json={"content": text}, headers=auth.headers()).get_json()
    with app.app_context():
        saved = db.session.scalar(
            select(Message).where(Message.chat_id == body["chat_id"], Message.role == "user")
        )
        assert saved.content == "Ça va? Grüße 👋 — \u201cquotes\u201d\nnew line"


# -- the OpenAI-compatible provider, against the fake server on loopback -----------------------------
def test_openai_compatible_stream_records_reported_usage(llm_app, fake_llm, read_sse):
    from tests.tests_support import load_samples_and_login

    client, headers = load_samples_and_login(llm_app)
    fake_llm.script(
        tokens=["Keep ", "a money ", "date [1] ", "and talk [2]."],
        prompt_tokens=321,
        completion_tokens=17,
    )
    events = read_sse(
        client.post("/api/v1/chat/stream", json={"content": COVERED}, headers=headers).get_data(
            as_text=True
        )
    )
    tokens = [e["data"]["content"] for e in events if e["event"] == "token"]
    assert "".join(tokens).startswith("Keep a money date [1] and talk [2].")  # maybe coalesced
    usage = events[-2]["data"]["usage"]
    assert usage["prompt_tokens"] == 321 and usage["completion_tokens"] == 17
    request = fake_llm.requests[-1]
    assert request["json"]["stream"] is True and request["json"]["model"] == "gpt-4o-mini"
    assert "Herman" in request["json"]["messages"][0]["content"]
    with llm_app.app_context():
        rows = db.session.scalars(select(TokenUsage)).all()
        chat_rows = [r for r in rows if r.kind == "chat"]
        assert [(r.prompt_tokens, r.completion_tokens) for r in chat_rows] == [(321, 17)]
        assert float(chat_rows[0].cost_usd) > 0
    me = client.get("/api/v1/me", headers=headers).get_json()
    assert (
        me["usage_today"]["prompt_tokens"] == 321 and me["usage_today"]["completion_tokens"] == 17
    )


def test_llm_failure_mid_stream_sends_error_and_saves_failed(llm_app, fake_llm, read_sse):
    from tests.tests_support import load_samples_and_login

    client, headers = load_samples_and_login(llm_app)
    fake_llm.script(tokens=["one ", "two ", "three ", "four "], fail_after=2)
    events = read_sse(
        client.post("/api/v1/chat/stream", json={"content": COVERED}, headers=headers).get_data(
            as_text=True
        )
    )
    names = [e["event"] for e in events]
    assert names[-1] == "error" and "done" not in names
    assert events[-1]["data"]["code"] in {"LLM_ERROR", "INTERNAL_ERROR"}
    with llm_app.app_context():
        reply = db.session.get(Message, events[0]["data"]["message_id"])
        assert reply.status == "failed" and reply.content.startswith("one two")
        assert reply.citations, "citations retrieved before the failure are kept"


def test_llm_error_status_on_json_endpoint(llm_app, fake_llm):
    from tests.tests_support import load_samples_and_login

    client, headers = load_samples_and_login(llm_app)
    fake_llm.script(status=500)
    reply = client.post("/api/v1/chat", json={"content": COVERED}, headers=headers)
    assert reply.status_code == 503
    body = reply.get_json()
    assert body["error"]["code"] == "LLM_ERROR" and body["chat_id"]
    with llm_app.app_context():
        assert db.session.get(Message, body["message_id"]).status == "failed"


def test_slow_llm_gets_ping_comments_between_events(tmp_path, fake_llm, read_sse):
    from tests.conftest import close_app, make_app
    from tests.tests_support import load_samples_and_login

    app = make_app(
        tmp_path,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_llm.base_url,
        LLM_MAX_RETRIES=0,
        SSE_PING_SECONDS=0.1,
    )
    try:
        client, headers = load_samples_and_login(app)
        fake_llm.script(tokens=["slow ", "answer [1]"], delay=0.6)
        events = read_sse(
            client.post("/api/v1/chat/stream", json={"content": COVERED}, headers=headers).get_data(
                as_text=True
            )
        )
        kinds = [e.get("event") or ("ping" if e.get("comment") == "ping" else "?") for e in events]
        first_token = kinds.index("token")
        assert "ping" in kinds[:first_token], kinds
        assert kinds[-1] == "done" and "?" not in kinds
        data_events = [e for e in events if "event" in e]
        assert [int(e["id"]) for e in data_events] == sorted(int(e["id"]) for e in data_events)
    finally:
        close_app(app)
