"""The provider's two stream modes against the fake OpenAI server over real HTTP: same text, same
usage, the provider's own error types."""

from __future__ import annotations

import openai
import pytest

from wwhd.config import load_config
from wwhd.providers.base import (
    AnswerRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    Usage,
)
from wwhd.providers.openai_compat import OpenAIChatModel, sse_data

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]


def _model(fake, mode: str) -> OpenAIChatModel:
    return OpenAIChatModel("gpt-test", "sk-test", fake.base_url, 10, 0, stream_mode=mode)


def _stream(model: OpenAIChatModel) -> tuple[list[str], list[Usage]]:
    pieces = list(model.stream_answer(AnswerRequest("Hi?", "Hi?", [], MESSAGES)))
    return [p for p in pieces if isinstance(p, str)], [p for p in pieces if isinstance(p, Usage)]


@pytest.mark.parametrize("mode", ["direct", "langchain"])
def test_both_modes_stream_the_same_text_and_usage(fake_llm, mode):
    fake_llm.script(tokens=["Hello", " there", " [1]", "."], prompt_tokens=17)
    text, usage = _stream(_model(fake_llm, mode))
    assert text == ["Hello", " there", " [1]", "."]
    assert usage == [Usage(model="gpt-test", prompt_tokens=17, completion_tokens=4)]
    assert fake_llm.counters["chat_calls"] == 1


def test_direct_mode_sends_the_langchain_request_body(fake_llm):
    """The fast path asks for exactly what ChatOpenAI.stream asks for."""
    fake_llm.script(tokens=["ok"])
    _stream(_model(fake_llm, "langchain"))
    _stream(_model(fake_llm, "direct"))
    via_langchain, direct = (r["json"] for r in fake_llm.requests[-2:])
    assert direct == via_langchain
    assert direct["stream_options"] == {"include_usage": True} and direct["messages"] == MESSAGES


def test_direct_mode_sends_a_history_as_given_without_the_sdks_transform(fake_llm, monkeypatch):
    """The messages (a history, non-ASCII text) reach the provider exactly as ChatOpenAI sends
    them, and the SDK's typed-params walk never sees them (its CPU per message is the point)."""
    from openai.resources.chat.completions import completions

    history = [
        {"role": "system", "content": "Sé breve."},
        {"role": "user", "content": "Hi? 👋"},
        {"role": "assistant", "content": "Hello [1]."},
        {"role": "user", "content": "And then?"},
    ]
    seen: list[int] = []
    transform = completions.maybe_transform
    monkeypatch.setattr(
        completions,
        "maybe_transform",
        lambda data, *a, **k: (
            seen.append(len(data.get("messages") or ())) or transform(data, *a, **k)
        ),
    )
    fake_llm.script(tokens=["ok"])
    for mode in ("langchain", "direct"):
        list(_model(fake_llm, mode).stream_answer(AnswerRequest("q", "q", [], history)))
    via_langchain, direct = (r["json"] for r in fake_llm.requests[-2:])
    assert direct == via_langchain and direct["messages"] == history
    assert list(direct) == list(via_langchain)  # same keys in the same order
    assert seen == [4, 0]  # langchain's path walks the four; the direct one walks none


@pytest.mark.parametrize("mode", ["direct", "langchain"])
def test_both_modes_raise_the_providers_error_types(fake_llm, mode):
    """The SDK's errors (and a stream cut mid-answer) reach the relay as the provider's own types,
    whichever path read the stream."""
    model = _model(fake_llm, mode)
    fake_llm.script(status=429)
    with pytest.raises(ProviderRateLimited) as limited:
        _stream(model)
    assert isinstance(limited.value.__cause__, openai.RateLimitError)
    fake_llm.script(status=500)
    with pytest.raises(ProviderError) as failed:
        _stream(model)
    assert failed.value.status_code == 500 and failed.value.code == "LLM_ERROR"
    fake_llm.script(tokens=["a", "b", "c", "d"], fail_after=2)
    received: list[str] = []
    with pytest.raises(ProviderError) as cut:
        for piece in model.stream_answer(AnswerRequest("Hi?", "Hi?", [], MESSAGES)):
            received.append(piece)
    assert received == ["a", "b"]
    assert not isinstance(cut.value, (ProviderRateLimited, ProviderTimeout))


def test_unknown_stream_mode_is_refused(monkeypatch):
    monkeypatch.setenv("LLM_STREAM_MODE", "fast")
    with pytest.raises(RuntimeError, match="LLM_STREAM_MODE"):
        load_config({"APP_ENV": "testing"})
    with pytest.raises(ValueError, match="LLM_STREAM_MODE"):
        OpenAIChatModel("m", "k", None, 1, 0, stream_mode="fast")


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_sse_data_reads_every_field_whatever_the_chunks_and_line_ends(newline):
    events = [b'{"a":"x\\u00e9"}', b'{"b":"a:b"}', "{\"c\":\"\u00e9\u4e2d\"}".encode(), b"[DONE]"]
    body = b"".join(
        b": comment" + newline + b"event: x" + newline + b"data: " + e + newline + newline
        for e in events
    )
    body += b"data:last-without-newline"
    expected = [*events, b"last-without-newline"]
    assert list(sse_data([body])) == expected
    for cut in range(1, len(body)):  # every split point, multi-byte characters and CRLF included
        assert list(sse_data([body[:cut], body[cut:]])) == expected, cut
    assert list(sse_data(body[i : i + 1] for i in range(len(body)))) == expected  # byte by byte
