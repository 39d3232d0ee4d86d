"""Fake OpenAI-compatible HTTP server on loopback for tests and benchmarks (stdlib + werkzeug only)."""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import json
import math
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

DEFAULT_ANSWER = "Here is a fake answer grounded in the passages [1]."
DEFAULT_MODEL = "gpt-fake"
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_COUNTER_KEYS = (
    "chat_calls",
    "embedding_calls",
    "prompt_tokens",
    "completion_tokens",
    "embedding_tokens",
)
_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "overloaded"),
}


def split_tokens(text: str) -> list[str]:
    """Split text into word tokens that keep their leading whitespace (joining them restores text)."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def estimate_tokens(text: str) -> int:
    """Deterministic token estimate: ``len(text) // 4``, at least 1."""
    return max(1, len(text) // 4)


def _message_text(messages: Any) -> str:
    parts: list[str] = []
    for msg in messages if isinstance(messages, list) else []:
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(
                p.get("text", "")
                for p in content
                if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
    return "\n".join(parts)


def embed_text(text: str, dim: int) -> list[float]:
    """Hashed bag-of-words random projection, L2-normalised: texts sharing words have higher cosine."""
    words = [w.lower() for w in _WORD_RE.findall(text)] or [""]
    vec = [0.0] * dim
    for word, count in collections.Counter(words).items():
        digest = hashlib.shake_256(("w:" + word).encode("utf-8")).digest(dim)
        for i, b in enumerate(digest):
            vec[i] += count * (b / 127.5 - 1.0)
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:
        vec = [0.0] * dim
        vec[0], norm = 1.0, 1.0
    return [v / norm for v in vec]


@dataclass
class Script:
    """What the next chat completions return."""

    tokens: list[str] | None = None  # content deltas; None -> split_tokens(DEFAULT_ANSWER)
    delay: float = 0.0  # seconds before each token (and before the first)
    status: int = (
        200  # non-200 -> OpenAI-shaped error JSON with that status (429 adds Retry-After: 0)
    )
    fail_after: int | None = (
        None  # abort the connection after N tokens (no [DONE]; non-stream: no response)
    )
    prompt_tokens: int | None = None  # reported usage; None -> estimate_tokens(message contents)
    completion_tokens: int | None = None  # None -> number of tokens sent
    times: int | None = (
        None  # apply to the next N chat requests, then fall back to default (None = until reset)
    )

    def resolved_tokens(self) -> list[str]:
        return list(self.tokens) if self.tokens is not None else split_tokens(DEFAULT_ANSWER)


class _Abort(Exception):
    """Raised inside the app to drop the connection without a response."""


class _Handler(WSGIRequestHandler):
    """Request handler that tracks live connections (so stop() can drop them) and is quiet by default."""

    protocol_version = "HTTP/1.1"
    wbufsize = (
        64 * 1024
    )  # werkzeug flushes after every chunk: one send() per SSE event instead of four

    def setup(self) -> None:
        super().setup()
        self.wfile = _EndFlushingWriter(self.wfile)  # type: ignore[assignment]

    def handle(self) -> None:
        live = self.server.live_connections  # type: ignore[attr-defined]
        with self.server.live_lock:  # type: ignore[attr-defined]
            live.add(self.connection)
        try:
            super().handle()
        finally:
            with self.server.live_lock:  # type: ignore[attr-defined]
                live.discard(self.connection)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if getattr(self.server, "verbose", False):
            super().log_request(code, size)


class _EndFlushingWriter:
    """Buffered wfile that also flushes werkzeug's unflushed chunked terminator so clients see the end at once."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, data: bytes) -> int:
        n = self._inner.write(data)
        if data == b"0\r\n\r\n":
            self._inner.flush()
        return n

    def close(self) -> None:
        try:
            self._inner.close()  # closes the socket file even if the final flush hits a dropped connection
        except OSError:
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _drop(environ: dict) -> None:
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(
                socket.SHUT_RDWR
            )  # FIN without the terminating chunk: client sees a truncated body
        except OSError:
            pass


class FakeOpenAI:
    """In-process fake OpenAI server; ``with FakeOpenAI() as fake: ChatOpenAI(base_url=fake.base_url, ...)``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        embed_dim: int = 64,
        *,
        default_script: Script | None = None,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.embed_dim = embed_dim
        self.default_script = default_script or Script()
        self.verbose = verbose
        self._lock = threading.Lock()
        self._script = self.default_script
        self._remaining: int | None = None
        self._queue: collections.deque[list[Any]] = collections.deque()  # [script, remaining]
        self.requests: list[
            dict
        ] = []  # {"path", "json", "headers"(lower-case keys)}; excludes /_ control paths
        self.counters: dict[str, int] = dict.fromkeys(_COUNTER_KEYS, 0)
        self._models: dict[str, None] = {DEFAULT_MODEL: None}
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        if self._server is not None:
            return self
        server = make_server(self.host, self.port, self, threaded=True, request_handler=_Handler)
        server.block_on_close = False  # never join streaming threads on close
        server.live_connections = set()
        server.live_lock = threading.Lock()
        server.verbose = self.verbose
        server.socket.listen(1024)  # bigger backlog for bursts of hundreds of connections
        self.port = server.server_port
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeOpenAI:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.live_lock:
            live = list(server.live_connections)
        for conn in live:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- scripting -------------------------------------------------------------------------------
    def script(self, **kw: Any) -> None:
        """Replace the current script with ``Script(**kw)`` (queued scripts still run first)."""
        s = Script(**kw)
        with self._lock:
            self._script, self._remaining = s, s.times

    def queue(self, *scripts: Script) -> None:
        """Append per-request scripts, consumed FIFO before the current script (each for ``times`` or 1 request)."""
        with self._lock:
            self._queue.extend([s, s.times or 1] for s in scripts)

    def reset(self) -> None:
        """Restore the default script and clear queue, requests and counters."""
        with self._lock:
            self._queue.clear()
            self._script, self._remaining = self.default_script, None
            self.requests.clear()
            for k in _COUNTER_KEYS:
                self.counters[k] = 0

    def _next_script(self) -> Script:
        with self._lock:
            if self._queue:
                entry = self._queue[0]
                entry[1] -= 1
                if entry[1] <= 0:
                    self._queue.popleft()
                return entry[0]
            s = self._script
            if self._remaining is not None:
                self._remaining -= 1
                if self._remaining <= 0:
                    self._script, self._remaining = self.default_script, None
            return s

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for k, v in deltas.items():
                self.counters[k] += v

    def counters_snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)

    # ---- WSGI ------------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except _Abort:
            _drop(environ)
            response = Response(b"", status=500)
        return response(environ, start_response)

    def _dispatch(self, req: Request) -> Response:
        path, method = req.path, req.method
        if path == "/_counters":
            return _json(self.counters_snapshot()) if method == "GET" else _error(405, "Use GET")
        if path == "/_reset":
            if method != "POST":
                return _error(405, "Use POST")
            self.reset()
            return _json({"ok": True})
        if path == "/_script":
            if method != "POST":
                return _error(405, "Use POST")
            try:
                self.script(**json.loads(req.get_data() or b"{}"))
            except (ValueError, TypeError) as e:
                return _error(400, f"Bad script: {e}")
            return _json({"ok": True})

        body: Any = None
        bad_json = False
        raw = req.get_data()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        with self._lock:
            self.requests.append(
                {
                    "path": path,
                    "json": body,
                    "headers": {k.lower(): v for k, v in req.headers.items()},
                }
            )

        routes = {
            "/v1/chat/completions": ("POST", self._chat),
            "/v1/embeddings": ("POST", self._embeddings),
            "/v1/models": ("GET", self._models_list),
        }
        if path not in routes:
            return _error(404, f"Unknown path {path}")
        want, handler = routes[path]
        if method != want:
            return _error(405, f"Method {method} not allowed on {path}")
        auth = req.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "Missing bearer token in Authorization header")
        if method == "POST" and (bad_json or not isinstance(body, dict)):
            return _error(400, "Request body must be a JSON object")
        return handler(body or {}, req)

    def _remember_model(self, model: Any) -> None:
        if isinstance(model, str) and model:
            with self._lock:
                self._models.setdefault(model, None)

    def _models_list(self, body: dict, req: Request) -> Response:
        with self._lock:
            names = list(self._models)
        return _json(
            {
                "object": "list",
                "data": [
                    {"id": n, "object": "model", "created": 0, "owned_by": "fake-openai"}
                    for n in names
                ],
            }
        )

    def _embeddings(self, body: dict, req: Request) -> Response:
        inp = body.get("input")
        if isinstance(inp, str) or (
            isinstance(inp, list) and inp and all(isinstance(x, int) for x in inp)
        ):
            inp = [inp]
        if not isinstance(inp, list) or not inp:
            return _error(400, "'input' must be a non-empty string or array")
        texts: list[str] = []
        for item in inp:
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, list) and all(isinstance(x, int) for x in item):
                texts.append(" ".join(f"tok{x}" for x in item))  # pre-tokenised input
            else:
                return _error(400, "'input' items must be strings or token arrays")
        dim = body.get("dimensions") or self.embed_dim
        if not isinstance(dim, int) or dim < 1:
            return _error(400, "'dimensions' must be a positive integer")
        model = body.get("model") or "text-embedding-fake"
        self._remember_model(model)
        b64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vec = embed_text(text, dim)
            emb: Any = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode() if b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        n = sum(estimate_tokens(t) for t in texts)
        self._count(embedding_calls=1, embedding_tokens=n)
        return _json(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": n, "total_tokens": n},
            }
        )

    def _chat(self, body: dict, req: Request) -> Response:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' must be a non-empty array")
        model = body.get("model") or DEFAULT_MODEL
        self._remember_model(model)
        script = self._next_script()
        self._count(chat_calls=1)
        if script.status != 200:
            if script.delay:
                time.sleep(script.delay)
            headers = {"Retry-After": "0"} if script.status == 429 else {}
            return _error(script.status, f"Scripted error {script.status}", headers)
        prompt = (
            script.prompt_tokens
            if script.prompt_tokens is not None
            else estimate_tokens(_message_text(messages))
        )
        tokens = script.resolved_tokens()
        stream = bool(body.get("stream"))
        if not stream:
            if script.fail_after is not None:
                time.sleep(script.delay * max(1, min(script.fail_after, len(tokens))))
                self._count(prompt_tokens=prompt)
                raise _Abort()
            if script.delay:
                time.sleep(script.delay * max(1, len(tokens)))
            completion = (
                script.completion_tokens if script.completion_tokens is not None else len(tokens)
            )
            self._count(prompt_tokens=prompt, completion_tokens=completion)
            return _json(
                {
                    "id": f"chatcmpl-fake-{uuid.uuid4().hex[:12]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "system_fingerprint": None,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": "".join(tokens),
                                "refusal": None,
                            },
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": _usage(prompt, completion),
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        gen = self._stream(req.environ, script, tokens, model, prompt, include_usage)
        return Response(
            gen,
            status=200,
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def _stream(
        self,
        environ: dict,
        script: Script,
        tokens: list[str],
        model: str,
        prompt: int,
        include_usage: bool,
    ) -> Iterator[bytes]:
        cid, created = f"chatcmpl-fake-{uuid.uuid4().hex[:12]}", int(time.time())

        def chunk(
            delta: dict, finish: str | None = None, choices: bool = True, usage: Any = None
        ) -> bytes:
            obj: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                if choices
                else [],
            }
            if include_usage:
                obj["usage"] = usage
            return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

        sent, counted = 0, False
        self._count(prompt_tokens=prompt)
        try:
            yield chunk({"role": "assistant", "content": "", "refusal": None})
            for tok in tokens:
                if script.fail_after is not None and sent >= script.fail_after:
                    break
                if script.delay:
                    time.sleep(script.delay)
                yield chunk({"content": tok})
                sent += 1
            if script.fail_after is not None and sent >= script.fail_after:
                counted = True
                self._count(completion_tokens=sent)
                _drop(environ)
                return
            if not tokens and script.delay:
                time.sleep(script.delay)
            completion = script.completion_tokens if script.completion_tokens is not None else sent
            counted = True  # count before the client can observe the end of the stream
            self._count(completion_tokens=completion)
            yield chunk({}, "stop")
            if include_usage:
                yield chunk({}, choices=False, usage=_usage(prompt, completion))
            yield b"data: [DONE]\n\n"
        finally:
            if not counted:  # client went away mid-stream
                self._count(completion_tokens=sent)


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(obj), status=status, mimetype="application/json", headers=headers)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    etype, code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", f"http_{status}")
    )
    return _json(
        {"error": {"message": message, "type": etype, "param": None, "code": code}}, status, headers
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fakes.openai_server", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument(
        "--tokens",
        type=int,
        default=None,
        help="tokens per completion (default: the default answer)",
    )
    p.add_argument("--delay", type=float, default=0.0, help="seconds before each token")
    p.add_argument("--embed-dim", type=int, default=64)
    p.add_argument("--verbose", action="store_true", help="log every request")
    args = p.parse_args(argv)
    tokens = (
        None
        if args.tokens is None
        else [f"{'' if i == 0 else ' '}tok{i}" for i in range(args.tokens)]
    )
    fake = FakeOpenAI(
        args.host,
        args.port,
        args.embed_dim,
        default_script=Script(tokens=tokens, delay=args.delay),
        verbose=args.verbose,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with fake:
        print(fake.base_url, flush=True)
        while not stop.wait(0.5):
            pass
    print("stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
