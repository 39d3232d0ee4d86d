"""Resumable streams (issue 11, item 5): a dropped client reconnects with Last-Event-ID and reads
the rest of the same turn, on this app or another sharing Redis, without a second LLM call."""

from __future__ import annotations

import os

import pytest

from tests.conftest import close_app, make_app, parse_sse
from tests.tests_support import load_samples_and_login
from wwhd import turns
from wwhd.extensions import db
from wwhd.models import Message

COVERED = "How do my wife and I stop fighting about money?"
ANSWER = ["Keep ", "a money ", "date [1] ", "and talk [2] "] + [f"word{i} " for i in range(30)]
REDIS_URL = os.environ.get("WWHD_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")


def llm_app(tmp_path, fake_llm, **overrides):
    return make_app(
        tmp_path,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_llm.base_url,
        LLM_MAX_RETRIES=0,
        LLM_TIMEOUT_S=5,
        **overrides,
    )


@pytest.fixture
def slow(tmp_path, fake_llm):
    app = llm_app(tmp_path, fake_llm)
    yield app
    close_app(app)


def read_until_tokens(response, tokens: int) -> list[dict]:
    """The events a client got before its connection dropped (after `tokens` token events)."""
    raw = ""
    chunks = response.iter_encoded()
    while raw.count("event: token") < tokens:
        raw += next(chunks).decode()
    response.close()  # the socket died
    return parse_sse(raw)


def text_of(events: list[dict]) -> str:
    return "".join(e["data"]["content"] for e in events if e.get("event") == "token")


def resume(client, headers, message_id: str, last_id: int):
    return client.get(
        f"/api/v1/messages/{message_id}/events", headers={**headers, "Last-Event-ID": str(last_id)}
    )


def test_cut_mid_answer_then_resume_gets_the_rest(slow, fake_llm):
    client, headers = load_samples_and_login(slow)
    fake_llm.script(tokens=ANSWER, delay=0.03)
    response = client.post("/api/v1/chat/stream", json={"content": COVERED}, headers=headers)
    before = read_until_tokens(response, 2)
    message_id = before[0]["data"]["message_id"]
    last_id = int(before[-1]["id"])
    resumed = resume(client, headers, message_id, last_id)
    assert resumed.status_code == 200 and resumed.mimetype == "text/event-stream"
    after = [e for e in parse_sse(resumed.get_data(as_text=True)) if "event" in e]
    assert [int(e["id"]) for e in after] == list(range(last_id + 1, last_id + 1 + len(after)))
    assert after[-1]["event"] == "done" and after[-1]["data"]["message_id"] == message_id
    assert turns.wait(slow, message_id)
    with slow.app_context():
        saved = db.session.get(Message, message_id)
        assert saved.status == "complete"
        assert text_of(before) + text_of(after) == saved.content == "".join(ANSWER)
    assert fake_llm.counters_snapshot()["chat_calls"] == 1  # the resume did not ask again


def test_resume_from_the_start_replays_a_finished_turn(slow, fake_llm):
    client, headers = load_samples_and_login(slow)
    fake_llm.script(tokens=ANSWER)
    first = parse_sse(
        client.post("/api/v1/chat/stream", json={"content": COVERED}, headers=headers).get_data(
            as_text=True
        )
    )
    message_id = first[0]["data"]["message_id"]
    again = client.get(f"/api/v1/messages/{message_id}/events", headers=headers)  # no header: 0
    assert parse_sse(again.get_data(as_text=True)) == first


def test_resume_on_another_app_instance_sharing_redis(tmp_path, fake_llm):
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception:
        if os.environ.get("WWHD_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required (WWHD_REQUIRE_REDIS=1) but {REDIS_URL} is unreachable")
        pytest.skip("Redis not reachable")
    first = llm_app(tmp_path, fake_llm, REDIS_URL=REDIS_URL)
    second = llm_app(tmp_path, fake_llm, REDIS_URL=REDIS_URL)  # same database, another process
    try:
        client, headers = load_samples_and_login(first)
        fake_llm.script(tokens=ANSWER, delay=0.03)
        response = client.post("/api/v1/chat/stream", json={"content": COVERED}, headers=headers)
        before = read_until_tokens(response, 2)
        message_id = before[0]["data"]["message_id"]
        resumed = resume(second.test_client(), headers, message_id, int(before[-1]["id"]))
        after = parse_sse(resumed.get_data(as_text=True))
        assert [e["event"] for e in after if "event" in e][-1] == "done"
        assert "wwhd_turns" not in second.extensions  # the second app ran no turn of its own
        assert turns.wait(first, message_id)
        with second.app_context():
            saved = db.session.get(Message, message_id)
            assert saved.status == "complete"
            assert text_of(before) + text_of(after) == saved.content == "".join(ANSWER)
        assert fake_llm.counters_snapshot()["chat_calls"] == 1
    finally:
        close_app(second)
        close_app(first)


def test_another_users_message_is_404_like_a_missing_one(slow, fake_llm, auth):
    client, headers = load_samples_and_login(slow)
    fake_llm.script(tokens=ANSWER)
    events = parse_sse(
        client.post("/api/v1/chat/stream", json={"content": COVERED}, headers=headers).get_data(
            as_text=True
        )
    )
    message_id = events[0]["data"]["message_id"]
    other = auth.headers("user")
    theirs = resume(client, other, message_id, 0)
    missing = resume(client, other, "00000000-0000-0000-0000-000000000000", 0)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.get_json()["error"]["message"] == missing.get_json()["error"]["message"]
    assert resume(client, headers, message_id, 0).status_code == 200  # the owner's works
    bad = resume(client, headers, message_id, "not-a-number")  # type: ignore[arg-type]
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "VALIDATION_ERROR"


def test_with_no_reader_past_the_grace_period_the_answer_is_saved_interrupted(tmp_path, fake_llm):
    app = llm_app(tmp_path, fake_llm, STREAM_GRACE_SECONDS=1)
    try:
        client, headers = load_samples_and_login(app)
        fake_llm.script(tokens=ANSWER, delay=0.1)  # 3.4 s of answer; the grace is 1 s
        response = client.post("/api/v1/chat/stream", json={"content": COVERED}, headers=headers)
        before = read_until_tokens(response, 1)
        message_id = before[0]["data"]["message_id"]
        assert turns.wait(app, message_id)
        with app.app_context():
            saved = db.session.get(Message, message_id)
            assert saved.status == "interrupted"
            # It kept generating during the grace period, then stopped short of the end.
            assert len(text_of(before)) < len(saved.content) < len("".join(ANSWER))
            assert "".join(ANSWER).startswith(saved.content)
        late = parse_sse(resume(client, headers, message_id, 0).get_data(as_text=True))
        assert late[-1]["event"] == "error" and late[-1]["data"]["code"] == "INTERRUPTED"
        assert text_of(late) == saved.content
    finally:
        close_app(app)


def test_a_resume_of_a_stream_no_longer_kept_is_410(slow, fake_llm):
    client, headers = load_samples_and_login(slow)
    fake_llm.script(tokens=ANSWER)
    events = parse_sse(
        client.post("/api/v1/chat/stream", json={"content": COVERED}, headers=headers).get_data(
            as_text=True
        )
    )
    slow.extensions["wwhd_streams"] = type(slow.extensions["wwhd_streams"])(ttl=300)  # restarted
    gone = resume(client, headers, events[0]["data"]["message_id"], 0)
    assert gone.status_code == 410 and gone.get_json()["error"]["code"] == "STREAM_EXPIRED"


def test_a_last_event_id_beyond_the_stream_is_422(slow, fake_llm):
    client, headers = load_samples_and_login(slow)
    fake_llm.script(tokens=ANSWER)
    events = parse_sse(
        client.post("/api/v1/chat/stream", json={"content": COVERED}, headers=headers).get_data(
            as_text=True
        )
    )
    message_id, last = events[0]["data"]["message_id"], int(events[-1]["id"])
    assert resume(client, headers, message_id, last).get_data(as_text=True) == ""  # all read
    beyond = resume(client, headers, message_id, last + 1)
    assert beyond.status_code == 422 and "Last-Event-ID" in beyond.get_json()["error"]["message"]


def test_with_redis_down_answers_still_stream_and_resume_here(tmp_path):
    app = make_app(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    try:
        client, headers = load_samples_and_login(app)
        first = parse_sse(
            client.post("/api/v1/chat/stream", json={"content": COVERED}, headers=headers).get_data(
                as_text=True
            )
        )
        assert first[-1]["event"] == "done"
        again = resume(client, headers, first[0]["data"]["message_id"], 0)
        assert parse_sse(again.get_data(as_text=True)) == first
    finally:
        close_app(app)
