"""The turn machinery's defects (issue 11, item 4): each test fails on the code before the fix."""

from __future__ import annotations

import io
import json
import logging
import operator
from typing import Annotated, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from tests.conftest import close_app, make_app
from tests.tests_support import load_samples_and_login
from wwhd import turns
from wwhd.extensions import db
from wwhd.logs import JsonFormatter, RequestContextFilter
from wwhd.models import Message

COVERED = "How do my wife and I stop fighting about money?"
ANSWER = ["Keep ", "a money ", "date [1] ", "and talk [2] "] + [f"word{i} " for i in range(40)]


@pytest.fixture
def slow_app(tmp_path, fake_llm):
    """The fake OpenAI server behind langchain-openai, no grace period (a reader leaving stops
    the turn), pings every 0.1 s."""
    app = make_app(
        tmp_path,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_llm.base_url,
        LLM_MAX_RETRIES=0,
        LLM_TIMEOUT_S=5,
        STREAM_GRACE_SECONDS=0,
        SSE_PING_SECONDS=0.1,
    )
    yield app
    close_app(app)


@pytest.fixture
def captured():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def test_client_leaving_after_the_first_frame_saves_interrupted(slow_app, fake_llm):
    client, headers = load_samples_and_login(slow_app)
    fake_llm.script(tokens=ANSWER, delay=0.05)
    response = client.post("/api/v1/chat/stream", json={"content": COVERED}, headers=headers)
    first = next(response.iter_encoded()).decode()
    assert "event: start" in first
    message_id = json.loads(first.split("data: ", 1)[1].split("\n", 1)[0])["message_id"]
    response.close()  # what the WSGI server does when the socket dies
    assert turns.wait(slow_app, message_id, timeout=30)
    with slow_app.app_context():
        reply = db.session.get(Message, message_id)
        assert reply.status == "interrupted"
        assert reply.content in "".join(ANSWER)
        # Stopped early: the fake server did not have to send the whole answer.
        assert len(reply.content) < len("".join(ANSWER))


def test_stream_failure_log_carries_request_and_user_id(llm_app, fake_llm, captured):
    client, headers = load_samples_and_login(llm_app)
    me = client.get("/api/v1/me", headers=headers).get_json()
    fake_llm.script(status=500)
    body = client.post(
        "/api/v1/chat/stream",
        json={"content": COVERED},
        headers={**headers, "X-Request-ID": "turn-log-check-1"},
    ).get_data(as_text=True)
    assert "event: error" in body
    records = [json.loads(line) for line in captured.getvalue().splitlines() if line.strip()]
    failed = [r for r in records if r.get("message") == "turn failed"]
    assert len(failed) == 1
    assert failed[0]["request_id"] == "turn-log-check-1"
    assert failed[0]["user_id"] == me["id"]
    assert failed[0]["error_code"] == "LLM_ERROR" and failed[0]["status_code"] == 500


def test_event_ids_are_consecutive_across_pings(slow_app, fake_llm, read_sse):
    client, headers = load_samples_and_login(slow_app)
    fake_llm.script(tokens=["slow ", "answer [1] ", "with pauses [2]."], delay=0.35)
    events = read_sse(
        client.post("/api/v1/chat/stream", json={"content": COVERED}, headers=headers).get_data(
            as_text=True
        )
    )
    assert any(e.get("comment") == "ping" for e in events[:-1])
    numbered = [e for e in events if "event" in e]
    assert numbered[-1]["event"] == "done"
    assert [int(e["id"]) for e in numbered] == list(range(1, len(numbered) + 1))


@pytest.mark.parametrize(
    "script, error, code",
    [
        ({"status": 429}, "ProviderRateLimited", "LLM_RATE_LIMITED"),
        ({"status": 500}, "ProviderError", "LLM_ERROR"),
        ({"tokens": ["late"], "delay": 2.0}, "ProviderTimeout", "LLM_TIMEOUT"),
    ],
)
def test_the_provider_raises_its_own_error_types(fake_llm, script, error, code):
    from wwhd.providers import base
    from wwhd.providers.base import AnswerRequest
    from wwhd.providers.openai_compat import OpenAIChatModel

    model = OpenAIChatModel("gpt-4o-mini", "sk-test", fake_llm.base_url, timeout=0.5, max_retries=0)
    request = AnswerRequest("q", "q", [], [{"role": "user", "content": "q"}])
    for call in (
        lambda: list(model.stream_answer(request)),
        lambda: model.complete(request.messages),
    ):
        fake_llm.script(**script)
        with pytest.raises(base.ProviderError) as raised:
            call()
        assert type(raised.value).__name__ == error
        assert raised.value.code == code and raised.value.user_message
        assert turns.classify_failure(raised.value) == (code, raised.value.user_message)
        if "status" in script:
            assert raised.value.status_code == script["status"]


def test_run_turn_lets_langgraph_apply_the_declared_reducers():
    """A key with a reducer the relay never heard of keeps every node's contribution."""
    from wwhd.pipeline.graph import run_turn

    class State(TypedDict, total=False):
        question: str
        notes: Annotated[list, operator.add]
        usage: Annotated[list[dict], operator.add]
        timings: Annotated[dict, operator.or_]

    def first(state, runtime):
        runtime.stream_writer({"citations": [{"title": "a"}]})
        runtime.stream_writer({"token": "one "})
        return {"notes": ["first"], "usage": [{"n": 1}], "timings": {"first_ms": 1}}

    def second(state, runtime):
        runtime.stream_writer({"token": "two"})
        return {"notes": ["second"], "usage": [{"n": 2}], "timings": {"second_ms": 2}}

    graph = StateGraph(State)
    graph.add_node("first", first)
    graph.add_node("second", second)
    graph.add_edge(START, "first")
    graph.add_edge("first", "second")
    graph.add_edge("second", END)
    events = list(run_turn(graph.compile(), {"question": "q", "notes": ["given"]}, None))
    assert [kind for kind, _ in events] == ["citations", "token", "token", "final"]
    assert events[0][1] == [{"title": "a"}]
    final = events[-1][1]
    assert final["notes"] == ["given", "first", "second"]
    assert final["usage"] == [{"n": 1}, {"n": 2}]
    assert final["timings"] == {"first_ms": 1, "second_ms": 2}
    assert final["llm_calls"] == 0 and final["question"] == "q"


def test_run_turn_into_ends_with_the_state_invoke_returns():
    """The turn worker's path streams only LangGraph's "values": its final state is the one
    invoke() returns, reducers applied, and the nodes' tokens reach the sink in order."""
    from dataclasses import dataclass

    from wwhd.pipeline.graph import run_turn_into

    class State(TypedDict, total=False):
        question: str
        notes: Annotated[list, operator.add]
        timings: Annotated[dict, operator.or_]

    @dataclass(frozen=True)
    class Context:
        sink: object = None

    def first(state, runtime):
        if runtime.context.sink:
            runtime.context.sink({"token": "one "})
        return {"notes": ["first"], "timings": {"first_ms": 1}}

    def second(state, runtime):
        if runtime.context.sink:
            runtime.context.sink({"token": "two"})
        return {"notes": ["second"], "timings": {"second_ms": 2}}

    graph = StateGraph(State, context_schema=Context)
    graph.add_node("first", first)
    graph.add_node("second", second)
    graph.add_edge(START, "first")
    graph.add_edge("first", "second")
    graph.add_edge("second", END)
    compiled = graph.compile()
    given = {"question": "q", "notes": ["given"]}
    events: list = []
    run_turn_into(compiled, given, Context(), events.append)
    assert events[:3] == [("citations", []), ("token", "one "), ("token", "two")]
    kind, final = events[-1]
    expected = compiled.invoke(given, context=Context())
    assert kind == "final" and {k: final[k] for k in expected} == expected
    assert final["notes"] == ["given", "first", "second"]


# -- coalescing (issue 11, item 2) ------------------------------------------------------------------
def test_the_coalescer_sends_at_most_one_frame_per_window():
    coalescer = turns.Coalescer(0.010)
    assert coalescer.add("a ", now=1.000) == ["a "]  # after a quiet window: at once
    assert coalescer.add("b ", now=1.004) == []  # within the window of the frame before
    assert coalescer.add("c ", now=1.006) == []
    assert coalescer.due(now=1.009) is None
    assert coalescer.due(now=1.010) == "b c "
    assert coalescer.due(now=2.0) is None and coalescer.deadline is None
    assert coalescer.add("d ", now=2.0) == ["d "]  # quiet again
    assert coalescer.add("e ", now=2.001) == []
    assert coalescer.add("f", now=2.02) == ["e f"]  # an overdue frame leaves with the newcomer
    assert coalescer.add("g", now=2.021) == [] and coalescer.take() == "g"
    spaced = turns.Coalescer(0.010)  # a provider's own pace: every token at once, no timer
    assert [spaced.add(t, now=3 + i * 0.02) for i, t in enumerate("xyz")] == [["x"], ["y"], ["z"]]
    assert spaced.deadline is None
    assert turns.Coalescer(0).add("h", now=4.0) == ["h"]  # window 0: one frame per token


def frontend_text(raw: str) -> str:
    """The original frontend's parser: split each read on newlines, JSON after `data: `."""
    text = ""
    for line in raw.split("\n"):
        if line.startswith("data: "):
            event = json.loads(line[len("data: ") :])
            if event["type"] == "token":
                text += event["content"]
    return text


def test_tokens_arriving_together_go_out_as_few_frames(samples, client, auth, read_sse, app):
    raw = client.post(
        "/api/v1/chat/stream", json={"content": COVERED}, headers=auth.headers()
    ).get_data(as_text=True)
    events = read_sse(raw)
    frames = [e for e in events if e.get("event") == "token"]
    with app.app_context():
        saved = db.session.get(Message, events[0]["data"]["message_id"])
    words = saved.content.split()
    assert len(words) > 20 and len(frames) < len(words) / 2  # the offline answer comes at once
    assert frontend_text(raw) == saved.content


@pytest.mark.parametrize("coalesce_ms, delay", [(0, 0.0), (10, 0.08)])
def test_no_coalescing_when_off_or_when_tokens_are_apart(
    tmp_path, fake_llm, read_sse, coalesce_ms, delay
):
    app = make_app(
        tmp_path,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_llm.base_url,
        LLM_MAX_RETRIES=0,
        SSE_COALESCE_MS=coalesce_ms,
    )
    try:
        client, headers = load_samples_and_login(app)
        tokens = ANSWER[:10]
        fake_llm.script(tokens=tokens, delay=delay)
        raw = client.post(
            "/api/v1/chat/stream", json={"content": COVERED}, headers=headers
        ).get_data(as_text=True)
        frames = [e["data"]["content"] for e in read_sse(raw) if e.get("event") == "token"]
        assert frames == tokens
        assert frontend_text(raw) == "".join(tokens)
    finally:
        close_app(app)


def test_the_first_token_goes_out_alone_even_when_the_rest_is_already_there(
    tmp_path, fake_llm, read_sse
):
    """Time to first token: the first token never waits for company, not even when the whole
    answer arrives at once (the provider had it buffered); later tokens still coalesce."""
    app = make_app(
        tmp_path,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_llm.base_url,
        LLM_MAX_RETRIES=0,
        SSE_COALESCE_MS=25,
    )
    try:
        client, headers = load_samples_and_login(app)
        fake_llm.script(tokens=ANSWER, delay=0.0)
        raw = client.post(
            "/api/v1/chat/stream", json={"content": COVERED}, headers=headers
        ).get_data(as_text=True)
        frames = [e["data"]["content"] for e in read_sse(raw) if e.get("event") == "token"]
        assert frames[0] == ANSWER[0]
        assert len(frames) < len(ANSWER) / 2  # the others arrived together: still joined
        assert "".join(frames) == "".join(ANSWER)
    finally:
        close_app(app)
