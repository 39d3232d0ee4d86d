"""Tests for the fake OpenAI server in tests/fakes/openai_server.py, driven by real clients over loopback HTTP."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI, Script, split_tokens

MESSAGES = [{"role": "user", "content": "What would Hillel do about a neighbour's noisy dog?"}]


@pytest.fixture(autouse=True)
def _no_tiktoken_downloads(monkeypatch):
    """tiktoken fetches encodings from the internet; fail loudly if anything tries to use it."""
    import tiktoken

    def boom(*a, **k):
        raise AssertionError("tiktoken must not be used in tests (it downloads encodings)")

    monkeypatch.setattr(tiktoken, "get_encoding", boom)
    monkeypatch.setattr(tiktoken, "encoding_for_model", boom)


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def client(fake):
    with openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0, timeout=10) as c:
        yield c


def chat_model(fake, **kw):
    return ChatOpenAI(
        base_url=fake.base_url,
        api_key="test",
        model="gpt-test",
        stream_usage=True,
        max_retries=0,
        timeout=10,
        **kw,
    )


def http(fake, method, path, body=None, headers=None):
    """Raw HTTP call; returns (status, headers, parsed JSON body)."""
    url = fake.base_url[: -len("/v1")] + path
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        with e:  # closes the response's socket
            return e.code, e.headers, json.loads(e.read())


def test_base_url_and_default_non_stream(fake, client):
    assert fake.base_url.startswith("http://127.0.0.1:") and fake.base_url.endswith("/v1")
    assert fake.port > 0
    resp = client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert resp.object == "chat.completion"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == DEFAULT_ANSWER
    assert resp.choices[0].finish_reason == "stop"
    expected_prompt = max(1, len(MESSAGES[0]["content"]) // 4)
    assert resp.usage.prompt_tokens == expected_prompt
    assert resp.usage.completion_tokens == len(split_tokens(DEFAULT_ANSWER))
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_split_tokens_round_trips():
    toks = split_tokens(DEFAULT_ANSWER)
    assert len(toks) > 3 and "".join(toks) == DEFAULT_ANSWER


def test_langchain_streaming_tokens_in_order_with_usage(fake):
    tokens = ["Hillel", " would", " ask", " first", "."]
    fake.script(tokens=tokens, prompt_tokens=17)
    chunks = list(chat_model(fake).stream("hello"))
    content = [c.content for c in chunks if c.content]
    assert content == tokens
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.content == "".join(tokens)
    assert total.usage_metadata["input_tokens"] == 17
    assert total.usage_metadata["output_tokens"] == len(tokens)
    assert total.usage_metadata["total_tokens"] == 17 + len(tokens)
    body = fake.requests[-1]["json"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_openai_stream_chunk_format(fake, client):
    fake.script(tokens=["a", "b"], completion_tokens=9)
    chunks = list(
        client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].delta.content for c in chunks[1:3]] == ["a", "b"]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 9
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)


def test_stream_without_include_usage_has_no_usage_chunk(fake, client):
    fake.script(tokens=["x"])
    chunks = list(client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_stream_tokens_arrive_over_time(fake, client):
    fake.script(tokens=["1", "2", "3", "4"], delay=0.05)
    arrivals = []
    for c in client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True):
        if c.choices and c.choices[0].delta.content:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 4
    # the server sleeps 0.05 s before each token, so unbuffered delivery spreads them by >= 0.15 s
    assert arrivals[-1] - arrivals[0] >= 0.14


def test_langchain_non_stream_content_and_usage(fake):
    fake.script(tokens=["Be", " kind", "."], prompt_tokens=5, completion_tokens=7)
    msg = chat_model(fake).invoke("hi")
    assert msg.content == "Be kind."
    assert msg.usage_metadata["input_tokens"] == 5
    assert msg.usage_metadata["output_tokens"] == 7
    assert msg.usage_metadata["total_tokens"] == 12


@pytest.mark.parametrize(
    ("status", "exc"), [(429, openai.RateLimitError), (500, openai.InternalServerError)]
)
def test_error_status_raises_openai_errors(fake, client, status, exc):
    fake.script(status=status)
    with pytest.raises(exc) as info:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert info.value.status_code == status
    assert set(info.value.body) >= {"message", "type", "code"}
    if status == 429:
        assert info.value.response.headers["retry-after"] == "0"
    with pytest.raises(exc):  # stream requests fail the same way, before any chunk
        list(chat_model(fake).stream("hi"))


def test_times_then_default(fake, client):
    fake.script(status=429, times=1)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    ok = client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert ok.choices[0].message.content == DEFAULT_ANSWER


def test_openai_client_retries_after_429(fake):
    fake.script(status=429, times=1)
    with openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=1, timeout=10) as c:
        resp = c.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert resp.choices[0].message.content == DEFAULT_ANSWER
    assert fake.counters["chat_calls"] == 2


def test_queue_fifo_then_current_script(fake, client):
    fake.script(tokens=["current"])
    fake.queue(Script(tokens=["first"]), Script(tokens=["second"], times=2))
    got = [
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
        .choices[0]
        .message.content
        for _ in range(5)
    ]
    assert got == ["first", "second", "second", "current", "current"]


def test_fail_after_aborts_stream_mid_way(fake):
    fake.script(tokens=["a", "b", "c", "d"], fail_after=2)
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in chat_model(fake).stream("hi"):
            if chunk.content:
                received.append(chunk.content)
    assert received == ["a", "b"]
    assert fake.counters["completion_tokens"] == 2


def test_fail_after_with_openai_client(fake, client):
    fake.script(tokens=["a", "b", "c"], fail_after=1)
    received = []
    with pytest.raises(openai.APIConnectionError):
        for c in client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True):
            if c.choices and c.choices[0].delta.content:
                received.append(c.choices[0].delta.content)
    assert received == ["a"]
    with pytest.raises(
        openai.APIConnectionError
    ):  # non-stream: connection dropped without a response
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)


def test_embeddings_deterministic_unit_norm_and_similarity(fake):
    emb = OpenAIEmbeddings(
        model="text-embedding-fake",
        base_url=fake.base_url,
        api_key="test",
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    texts = [
        "honour your father and mother",
        "honour your mother",
        "quantum chromodynamics lattice",
    ]
    vecs = emb.embed_documents(texts)
    assert len(vecs) == 3 and all(len(v) == 64 for v in vecs)
    assert emb.embed_documents(texts) == vecs
    assert emb.embed_query(texts[0]) == pytest.approx(vecs[0], abs=1e-6)
    for v in vecs:
        assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, abs_tol=1e-5)

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b))

    assert cos(vecs[0], vecs[1]) > cos(vecs[0], vecs[2])
    assert fake.counters["embedding_calls"] == 3
    assert fake.counters["embedding_tokens"] > 0


def test_embeddings_openai_client_float_and_dim(client):
    with FakeOpenAI(embed_dim=16) as small:
        with openai.OpenAI(base_url=small.base_url, api_key="test", max_retries=0) as c:
            resp = c.embeddings.create(model="emb", input="one text", encoding_format="float")
    assert len(resp.data) == 1 and len(resp.data[0].embedding) == 16
    b64 = client.embeddings.create(model="emb", input=["one text", "two"])  # client default: base64
    assert [d.index for d in b64.data] == [0, 1] and len(b64.data[0].embedding) == 64
    assert b64.usage.prompt_tokens >= 2


def test_counters_and_requests_recorded(fake, client):
    client.chat.completions.create(model="gpt-a", messages=MESSAGES)
    fake.script(tokens=["x", "y"], prompt_tokens=3)
    list(client.chat.completions.create(model="gpt-b", messages=MESSAGES, stream=True))
    client.embeddings.create(model="emb-c", input="hello world", encoding_format="float")
    c = fake.counters
    assert c["chat_calls"] == 2 and c["embedding_calls"] == 1
    assert c["prompt_tokens"] == max(1, len(MESSAGES[0]["content"]) // 4) + 3
    assert c["completion_tokens"] == len(split_tokens(DEFAULT_ANSWER)) + 2
    assert c["embedding_tokens"] == max(1, len("hello world") // 4)
    assert [r["path"] for r in fake.requests] == ["/v1/chat/completions"] * 2 + ["/v1/embeddings"]
    assert fake.requests[0]["json"]["model"] == "gpt-a"
    assert fake.requests[0]["headers"]["authorization"] == "Bearer test"
    assert [m.id for m in client.models.list()][:4] == ["gpt-fake", "gpt-a", "gpt-b", "emb-c"]

    status, _, body = http(fake, "GET", "/_counters")
    assert status == 200 and body == fake.counters
    status, _, _ = http(fake, "POST", "/_reset")
    assert status == 200
    assert fake.requests == [] and all(v == 0 for v in fake.counters.values())


def test_reset_restores_default_script(fake, client):
    fake.script(tokens=["scripted"])
    fake.queue(Script(tokens=["queued"]))
    fake.reset()
    assert (
        client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
        == DEFAULT_ANSWER
    )


def test_http_errors_are_openai_shaped(fake):
    auth = {"Authorization": "Bearer test", "Content-Type": "application/json"}
    status, _, body = http(
        fake, "POST", "/v1/chat/completions", {"model": "m", "messages": MESSAGES}
    )
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    status, _, body = http(fake, "POST", "/v1/chat/completions", b"{not json", auth)
    assert status == 400 and set(body["error"]) >= {"message", "type", "code"}
    status, _, body = http(fake, "GET", "/v1/nope", headers=auth)
    assert status == 404 and "error" in body
    status, _, body = http(fake, "GET", "/v1/models", headers=auth)
    assert status == 200 and body["data"][0]["id"] == "gpt-fake"


def test_missing_auth_raises_authentication_error(fake):
    with openai.OpenAI(
        base_url=fake.base_url, api_key="test", max_retries=0, default_headers={"Authorization": ""}
    ) as c:
        with pytest.raises(openai.AuthenticationError):
            c.chat.completions.create(model="m", messages=MESSAGES)


def test_fifty_concurrent_streams_overlap(fake):
    fake.script(tokens=["t1", " t2", " t3", " t4", " t5"], delay=0.05)
    n = 50
    with openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0, timeout=30) as c:

        def one(_):
            stream = c.chat.completions.create(
                model="gpt-test",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            return [ch for ch in stream]

        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=n) as pool:
            results = list(pool.map(one, range(n)))
        elapsed = time.monotonic() - start
    for chunks in results:
        assert (
            "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
            == "t1 t2 t3 t4 t5"
        )
        assert chunks[-1].usage.completion_tokens == 5
    # serially this would take >= 50 * 0.25 s = 12.5 s
    assert elapsed < 5.0
    assert fake.counters["chat_calls"] == n and fake.counters["completion_tokens"] == 5 * n


def test_stop_is_idempotent_and_frees_port():
    fake = FakeOpenAI().start()
    url = fake.base_url
    fake.stop()
    fake.stop()
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    with pytest.raises(OSError):
        urllib.request.urlopen(url.replace("/v1", "/_counters"), timeout=2)


def test_cli_serves_until_sigterm():
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.openai_server",
            "--port",
            "0",
            "--tokens",
            "3",
            "--delay",
            "0",
            "--embed-dim",
            "8",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with openai.OpenAI(base_url=base_url, api_key="test", max_retries=0, timeout=10) as c:
            text = (
                c.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
            )
            assert text == "tok0 tok1 tok2"
            assert (
                len(
                    c.embeddings.create(model="e", input="x", encoding_format="float")
                    .data[0]
                    .embedding
                )
                == 8
            )
        root_url = base_url[: -len("/v1")]
        with urllib.request.urlopen(root_url + "/_counters", timeout=5) as r:
            assert json.loads(r.read())["chat_calls"] == 1
        req = urllib.request.Request(root_url + "/_reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=5):
            pass
        with urllib.request.urlopen(root_url + "/_counters", timeout=5) as r:
            assert json.loads(r.read())["chat_calls"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.stderr.close()
