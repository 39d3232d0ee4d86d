"""OpenAI-compatible chat (langchain-openai) and embeddings: OpenAI, OpenRouter, Ollama, vLLM."""

from __future__ import annotations

import functools
import inspect
import json
import time
from collections.abc import Iterable, Iterator

import httpx
import httpx2  # the openai SDK's HTTP client (pinned with it in requirements.txt)
import openai
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from openai import OpenAI

from .base import AnswerRequest, ProviderError, ProviderRateLimited, ProviderTimeout, Usage

PROBE_TTL_S = 30
STREAM_MODES = ("direct", "langchain")
TEMPERATURE = 0.3
_ROLES = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


# What the SDK raises: its own errors, and httpx's for a stream the server cut mid-read.
SDK_ERRORS = (openai.OpenAIError, httpx.HTTPError, httpx2.HTTPError)


def provider_error(exc: BaseException) -> ProviderError:
    """The provider error an SDK failure (one of SDK_ERRORS) stands for."""
    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.RateLimitError):
        return ProviderRateLimited(status)
    if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException, httpx2.TimeoutException)):
        return ProviderTimeout(status)
    return ProviderError(status)


def _mapped(method):
    """The method (or generator method) raising provider errors instead of the SDK's."""

    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generate(*args, **kwargs):
            try:
                yield from method(*args, **kwargs)
            except SDK_ERRORS as exc:
                raise provider_error(exc) from exc

        return generate

    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except SDK_ERRORS as exc:
            raise provider_error(exc) from exc

    return call


def sse_data(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The `data:` field of each line of a server-sent event body, as bytes, across chunk
    boundaries (a line ends at LF, CR or CRLF, as the SSE spec has it).

    Why not the SDK's iter_lines: it decodes each chunk to text and splits it again in Python
    (httpx's TextDecoder and LineDecoder), for lines whose JSON json.loads reads from bytes
    anyway: a 300-token stream took 8.2-8.5 ms of CPU that way, 6.6-7.4 ms this way (BENCHMARKS.md
    §8, session 7)."""
    pending = b""
    for chunk in chunks:
        lines = (pending + chunk if pending else chunk).splitlines(keepends=True)
        # The last line may continue in the next chunk. One ending in CR may be the first half
        # of a CRLF: the LF then reads as an empty line, which carries no field.
        pending = lines.pop() if lines and lines[-1][-1:] not in (b"\n", b"\r") else b""
        for line in lines:
            if line.startswith(b"data:"):
                yield line[5:].strip()
    if pending.startswith(b"data:"):
        yield pending[5:].strip()


def _to_langchain(messages: list[dict]):
    return [_ROLES[m["role"]](content=m["content"]) for m in messages]


class OpenAIChatModel:
    offline = False

    def __init__(
        self,
        model: str,
        api_key: str,
        base_url: str | None,
        timeout: float,
        max_retries: int,
        stream_mode: str = "direct",
    ):
        if stream_mode not in STREAM_MODES:
            raise ValueError(f"LLM_STREAM_MODE must be one of {', '.join(STREAM_MODES)}")
        self.name = model
        self.stream_mode = stream_mode
        # Local servers (Ollama, vLLM) accept any key; the client library insists on one.
        self._llm = ChatOpenAI(
            model=model,
            api_key=api_key or "not-needed",
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            stream_usage=True,
            temperature=TEMPERATURE,
        )
        # A separate, impatient client: a health probe must not wait out the chat timeout or retry.
        self._probe = OpenAI(
            api_key=api_key or "not-needed", base_url=base_url, timeout=3, max_retries=0
        )
        self._probed: tuple[float, tuple[bool, str]] | None = None

    def reachable(self) -> tuple[bool, str]:
        """GET /models, cached for PROBE_TTL_S so frequent health checks cost one call at most."""
        now = time.monotonic()
        if self._probed and now - self._probed[0] < PROBE_TTL_S:
            return self._probed[1]
        try:
            self._probe.models.list()
            result = (True, "ok")
        except (
            Exception
        ) as exc:  # any failure means "not reachable now"; the type is enough to say why
            result = (False, type(exc).__name__)
        self._probed = (now, result)
        return result

    @_mapped
    def stream_answer(self, request: AnswerRequest) -> Iterator[str | Usage]:
        # A generator itself, so that _mapped maps what either path raises while it is read.
        if self.stream_mode == "direct":
            yield from self._stream_direct(request.messages)
        else:
            yield from self._stream_langchain(request)

    def _stream_direct(self, messages: list[dict]) -> Iterator[str | Usage]:
        """The streamed answer through langchain-openai's own configured openai client (same base
        URL, key, timeout and retries before the first byte), read as raw SSE lines.

        Why: per chunk, the langchain path builds an openai pydantic model, dumps it back to a
        dict, wraps it in an AIMessageChunk and merges it into the running message, and runs the
        callback manager — ~0.3 ms of CPU per token (bench/profile_turn.py, BENCHMARKS.md), over
        half the server's CPU for a 300-token answer. We use none of it: only the text and the
        final usage. json.loads of the chunk is all that is left. LLM_STREAM_MODE=langchain
        restores the langchain path."""
        payload = {
            "model": self.name,
            # The messages travel in extra_body: the SDK walks typed params against their
            # TypedDicts (its maybe_transform alone: 0.37 ms of CPU for a new chat's two
            # messages, 1.3 ms with a history of eight) and would change nothing in plain
            # role/content strings. extra_body replaces the placeholder in the same place of the
            # same body (tests/pipeline/test_provider_stream.py).
            "messages": [],
            "extra_body": {"messages": messages},
            "temperature": TEMPERATURE,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        usage: dict = {}
        # with_streaming_response: the SDK still sends, retries and raises its typed status
        # errors (RateLimitError, InternalServerError, …); it just does not parse the body.
        with self._llm.client.with_streaming_response.create(**payload) as response:
            try:
                finished = False
                for data in sse_data(response.iter_bytes()):
                    # After [DONE], read on to the body's end rather than break: a response
                    # closed before its last chunk closes its connection too, and every turn
                    # paid a new TCP connect (and a TLS handshake, with a real provider).
                    if finished:
                        continue
                    if data == b"[DONE]":
                        finished = True
                        continue
                    chunk = json.loads(data)
                    if chunk.get("error"):  # an error sent mid-stream, as the SDK's Stream reads it
                        error = chunk["error"]
                        message = error.get("message") if isinstance(error, dict) else None
                        raise openai.APIError(
                            message or "error in the streamed answer",
                            request=response.http_request,
                            body=error,
                        )
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or ():
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield text
            except httpx2.TimeoutException as exc:  # the answer stalled past LLM_TIMEOUT_S
                raise openai.APITimeoutError(request=response.http_request) from exc
            except httpx2.TransportError as exc:  # broke mid-answer
                raise openai.APIConnectionError(request=response.http_request) from exc
            except json.JSONDecodeError as exc:
                raise openai.APIError(
                    "malformed chunk in the streamed answer",
                    request=response.http_request,
                    body=None,
                ) from exc
        yield Usage(
            model=self.name,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    def _stream_langchain(self, request: AnswerRequest) -> Iterator[str | Usage]:
        usage = None
        for chunk in self._llm.stream(_to_langchain(request.messages)):
            if chunk.content:
                yield (
                    chunk.content
                    if isinstance(chunk.content, str)
                    else "".join(
                        part.get("text", "") for part in chunk.content if isinstance(part, dict)
                    )
                )
            if chunk.usage_metadata:
                usage = chunk.usage_metadata
        yield Usage(
            model=self.name,
            prompt_tokens=int(usage["input_tokens"]) if usage else 0,
            completion_tokens=int(usage["output_tokens"]) if usage else 0,
        )

    @_mapped
    def complete(self, messages: list[dict]) -> tuple[str, Usage]:
        reply = self._llm.invoke(_to_langchain(messages))
        meta = reply.usage_metadata or {}
        return str(reply.content), Usage(
            model=self.name,
            prompt_tokens=int(meta.get("input_tokens", 0)),
            completion_tokens=int(meta.get("output_tokens", 0)),
        )


class OpenAIEmbedder:
    """Uses the openai client directly: langchain's embeddings drop `usage`, which we bill, and by
    default call tiktoken, which downloads its encodings from the internet."""

    BATCH = 64

    def __init__(
        self, model: str, api_key: str, base_url: str | None, timeout: float, max_retries: int
    ):
        self.name = model
        self._client = OpenAI(
            api_key=api_key or "not-needed",
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
        )

    def embed(self, texts: list[str]) -> tuple[list[list[float]], Usage]:
        vectors: list[list[float]] = []
        tokens = 0
        for start in range(0, len(texts), self.BATCH):
            reply = self._client.embeddings.create(
                model=self.name, input=texts[start : start + self.BATCH]
            )
            vectors.extend(item.embedding for item in sorted(reply.data, key=lambda d: d.index))
            tokens += reply.usage.prompt_tokens if reply.usage else 0
        return vectors, Usage(model=self.name, prompt_tokens=tokens, kind="embedding")
