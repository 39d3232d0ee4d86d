"""Bench harness: a real gunicorn server and a fake LLM process on loopback, a small HTTP client, stats."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent  # the venv running the bench also provides gunicorn and flask
BENCH_EMAIL = "bench@example.com"
BENCH_PASSWORD = "bench-password-123"
STARTUP_DEADLINE_S = 90.0
STOP_DEADLINE_S = 15.0


# -- processes -----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_line(proc: subprocess.Popen, deadline_s: float) -> str:
    """First stdout line of `proc` within the deadline (the fake LLM prints its base URL)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    end = time.monotonic() + deadline_s
    buf = b""
    try:
        while time.monotonic() < end:
            if not sel.select(timeout=max(0.0, end - time.monotonic())):
                break
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            if b"\n" in buf:
                return buf.split(b"\n", 1)[0].decode().strip()
    finally:
        sel.close()
    raise RuntimeError(
        f"process {proc.pid} printed no line within {deadline_s:.0f} s (exit code {proc.poll()})"
    )


def _stop(proc: subprocess.Popen | None, deadline_s: float = STOP_DEADLINE_S) -> None:
    """SIGTERM this one process (gunicorn's master stops its own workers), SIGKILL after the deadline."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()  # a PIPE (the fake's URL line) is ours to close


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        for task in task_dir.iterdir():
            text = (task / "children").read_text().split()
            kids.extend(int(k) for k in text)
    except OSError:
        pass
    return kids


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """`pid` and its children (gunicorn master + workers)."""
    return [pid, *_children(pid)]


def rss_mib(pid: int) -> float:
    """Current resident memory of the process tree in MiB (VmRSS summed)."""
    return sum(_status_kib(p, "VmRSS") for p in process_tree(pid)) / 1024


def hwm_mib(pid: int) -> float:
    """Peak resident memory since start (VmHWM summed over the tree; an upper bound of the joint peak)."""
    return sum(_status_kib(p, "VmHWM") for p in process_tree(pid)) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time consumed so far by the process tree (from /proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / ticks


class RssSampler:
    """Samples the tree's RSS every `interval` seconds in a thread; `peak` is the largest sum seen."""

    def __init__(self, pid: int, interval: float = 0.05, max_seconds: float = 600.0):
        self.pid, self.interval, self.max_seconds = pid, interval, max_seconds
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _run(self) -> None:
        end = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < end:
            self.peak = max(self.peak, rss_mib(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak = rss_mib(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, rss_mib(self.pid))


@dataclass
class Stack:
    """A running fake LLM + migrated, seeded WWHD server under gunicorn, all under one temp dir."""

    tmp: Path
    host: str
    port: int
    fake_url: str  # http://127.0.0.1:P/v1
    server: subprocess.Popen
    fake: subprocess.Popen
    env: dict[str, str]
    token: str = ""
    keep_tmp: bool = False

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def fake_root(self) -> str:
        return self.fake_url.removesuffix("/v1")

    @property
    def pid(self) -> int:
        return self.server.pid

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def fake_counters(self) -> dict[str, int]:
        return http_json("GET", self.fake_root + "/_counters")

    def fake_reset(self) -> None:
        http_json("POST", self.fake_root + "/_reset", {})

    def fake_script(self, **script: Any) -> None:
        """Replace the fake LLM's script (tokens, delay, ...) for the following requests."""
        http_json("POST", self.fake_root + "/_script", script)

    def message_meta(self, message_id: str) -> dict:
        """The saved assistant message's `meta` (route method, timings…), read straight from SQLite."""
        import sqlite3

        with sqlite3.connect(f"file:{self.tmp / 'wwhd.db'}?mode=ro", uri=True, timeout=10) as conn:
            row = conn.execute("SELECT meta FROM messages WHERE id = ?", (message_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else {}

    def log_tail(self, n: int = 40) -> str:
        path = self.tmp / "server.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""
        )

    def stop(self) -> None:
        _stop(self.server)
        _stop(self.fake)
        for f in ("_server_log", "_fake_log"):
            handle = getattr(self, f, None)
            if handle:
                handle.close()
        if not self.keep_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def http_json(
    method: str, url: str, body: Any = None, headers: dict | None = None, timeout: float = 30
) -> Any:
    """Blocking JSON request for setup steps (not for measurements)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(req, timeout=timeout) as reply:
        return json.loads(reply.read() or b"null")


def _flask(env: dict, *args: str, timeout: float = 300) -> None:
    proc = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"flask {' '.join(args[:2])} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )


def _wait_healthy(stack: Stack, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    last = ""
    while time.monotonic() < end:
        if stack.server.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {stack.server.returncode}:\n{stack.log_tail()}"
            )
        try:
            if http_json("GET", stack.base + "/health", timeout=2).get("status") == "ok":
                return
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.1)  # polling a starting server; bounded by the deadline
    raise RuntimeError(f"/health not ok within {deadline_s:.0f} s ({last}):\n{stack.log_tail()}")


def start_stack(
    *,
    tokens: int = 20,
    delay: float = 0.0,
    workers: int = 1,
    extra_env: dict | None = None,
    load_samples: bool = True,
    keep_tmp: bool = False,
    app: str = "wsgi:app",
) -> Stack:
    """Fake LLM → migrate → samples → bench user → gunicorn → /health → login. Caller stops it."""
    tmp = Path(tempfile.mkdtemp(prefix="wwhd-bench-"))
    fake = server = None
    try:
        fake_log = open(tmp / "fake.log", "wb")
        fake = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fakes.openai_server",
                "--port",
                "0",
                "--tokens",
                str(tokens),
                "--delay",
                str(delay),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=fake_log,
        )
        fake_url = _read_line(fake, 30)
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("WWHD_", "QDRANT_", "OPENAI_", "MODEL_"))
        }
        env.update(
            {
                "APP_ENV": "dev",
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "WEB_CONCURRENCY": str(workers),
                "DATA_DIR": str(tmp),
                "QDRANT_PATH": str(tmp / "qdrant"),
                "QDRANT_URL": "",
                "DATABASE_URL": f"sqlite:///{tmp / 'wwhd.db'}",
                "UPLOAD_DIR": str(tmp / "uploads"),
                "OPENAI_API_KEY": "sk-bench",
                "OPENAI_BASE_URL": fake_url,
                "MODEL_CHAT": "gpt-4o-mini",
                "MODEL_EMBED": "",
                "REDIS_URL": "",
                "JWT_SECRET": "bench-secret-" + "x" * 40,
                "PYTHONUNBUFFERED": "1",
                # One bench user sends hundreds of requests a minute: keep the limiter and quota code
                # paths running (their cost is part of the overhead) with ceilings no bench reaches.
                "RATE_LIMIT_USER": "10000000/minute",
                "RATE_LIMIT_LOGIN": "10000000/minute",
                "RATE_LIMIT_ANON": "10000000/minute",
                "DAILY_TOKENS_USER": str(10**12),
            }
        )
        env.update(extra_env or {})
        _flask(env, "db", "upgrade")
        if load_samples:
            _flask(env, "wwhd", "load-samples")
        _flask(
            env,
            "wwhd",
            "create-user",
            BENCH_EMAIL,
            "--username",
            "bench",
            "--password",
            BENCH_PASSWORD,
            "--role",
            "user",
        )
        server_log = open(tmp / "server.log", "wb")
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", app],
            cwd=ROOT,
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        stack = Stack(
            tmp=tmp,
            host="127.0.0.1",
            port=port,
            fake_url=fake_url,
            server=server,
            fake=fake,
            env=env,
            keep_tmp=keep_tmp,
        )
        stack._server_log, stack._fake_log = server_log, fake_log  # type: ignore[attr-defined]
        _wait_healthy(stack, STARTUP_DEADLINE_S)
        stack.token = http_json(
            "POST",
            stack.base + "/api/v1/auth/login",
            {"email": BENCH_EMAIL, "password": BENCH_PASSWORD},
        )["access_token"]
        return stack
    except BaseException:
        _stop(server)
        _stop(fake)
        if not keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise


# -- a small HTTP/1.1 client on asyncio streams ---------------------------------------------------------
# Cheaper per event than httpx, so on a 2-core machine the client steals less CPU from the server.
@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class Conn:
    """One keep-alive connection; reopens itself when the server closed it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=1 << 20
        )

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
            self.reader = self.writer = None

    async def request(
        self,
        method: str,
        path: str,
        headers: dict | None = None,
        body: bytes | None = None,
        on_data: Callable[[bytes], None] | None = None,
    ) -> Reply:
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection before replying")
        status = int(status_line.split()[1])
        reply_headers: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            key, _, value = line.decode("latin-1").partition(":")
            reply_headers[key.strip().lower()] = value.strip()
        parts: list[bytes] = []
        sink = on_data or parts.append
        if reply_headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = await self.reader.readexactly(size + 2)
                sink(data[:-2])
        elif "content-length" in reply_headers:
            sink(await self.reader.readexactly(int(reply_headers["content-length"])))
        else:
            while chunk := await self.reader.read(65536):
                sink(chunk)
            reply_headers["connection"] = "close"
        keep = reply_headers.get("connection", "").lower() != "close"
        if not keep:
            await self.close()
        return Reply(status, reply_headers, b"".join(parts), keep)


@dataclass
class StreamResult:
    """One streamed chat turn as the client saw it (seconds from sending the request)."""

    status: int = 0
    ttft: float | None = None  # first `token` event
    total: float | None = None  # `done` event (or end of body)
    events: dict[str, int] = field(default_factory=dict)
    metadata: dict | None = None
    error: str | None = None
    chat_id: str | None = None
    message_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == 200 and self.events.get("done", 0) == 1


class SseParser:
    """Incremental `text/event-stream` parser recording when each event type first arrives."""

    def __init__(self, started: float, result: StreamResult):
        self.started, self.result, self.buf = started, result, b""

    def feed(self, data: bytes) -> None:
        now = time.perf_counter() - self.started
        self.buf += data
        while b"\n\n" in self.buf:
            block, self.buf = self.buf.split(b"\n\n", 1)
            event, payload = "message", None
            for line in block.split(b"\n"):
                if line.startswith(b"event: "):
                    event = line[7:].decode()
                elif line.startswith(b"data: "):
                    payload = line[6:]
                elif line.startswith(b":"):
                    event = "ping"
            r = self.result
            r.events[event] = r.events.get(event, 0) + 1
            if event == "token" and r.ttft is None:
                r.ttft = now
            elif event == "metadata" and payload:
                r.metadata = json.loads(payload)
            elif event == "start" and payload:
                start = json.loads(payload)
                r.chat_id, r.message_id = start.get("chat_id"), start.get("message_id")
            elif event == "error":
                r.error = "error event: " + (payload or b"").decode(errors="replace")[:200]
            elif event == "done":
                r.total = now


async def stream_chat(
    host: str,
    port: int,
    token: str,
    content: str,
    *,
    chat_id: str | None = None,
    timeout: float = 60.0,
    conn: Conn | None = None,
) -> StreamResult:
    """POST /api/v1/chat/stream and time the events; never raises (errors land in the result)."""
    result = StreamResult()
    own = conn is None
    conn = conn or Conn(host, port)
    body = {"content": content, **({"chat_id": chat_id} if chat_id else {})}
    started = time.perf_counter()
    parser = SseParser(started, result)
    try:
        reply = await asyncio.wait_for(
            conn.request(
                "POST",
                "/api/v1/chat/stream",
                {
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                    "Accept": "text/event-stream",
                },
                json.dumps(body).encode(),
                on_data=parser.feed,
            ),
            timeout,
        )
        result.status = reply.status
        if reply.status != 200:
            result.error = f"HTTP {reply.status}"
        elif result.total is None:
            result.error = result.error or "stream ended without done"
    except TimeoutError:
        result.error = f"timeout after {timeout:.0f} s"
        await conn.close()
    except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:200]
        await conn.close()
    finally:
        if own:
            await conn.close()
    return result


# -- statistics and output ------------------------------------------------------------------------------
def percentile(values: Iterable[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation), None for no data."""
    data = sorted(values)
    if not data:
        return None
    rank = max(1, min(len(data), int(-(-pct * len(data) // 100))))
    return data[rank - 1]


def summary_ms(values_s: Iterable[float]) -> dict[str, float | None]:
    """p50/p95/p99/mean/max in milliseconds from seconds."""
    ms = [v * 1000 for v in values_s]
    out = {
        f"p{p}": (round(v, 2) if (v := percentile(ms, p)) is not None else None)
        for p in (50, 95, 99)
    }
    out["mean"] = round(statistics.fmean(ms), 2) if ms else None
    out["max"] = round(max(ms), 2) if ms else None
    out["n"] = len(ms)
    return out


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [
        [("-" if c is None else f"{c:,.2f}" if isinstance(c, float) else str(c)) for c in row]
        for row in rows
    ]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    return "\n".join([line, sep, *body])


class MachineLoad:
    """Share of the machine's CPU that was busy during a block, and the load average around it.

    Benchmarks on a shared machine are only comparable when this is recorded next to them.
    """

    @staticmethod
    def _stat() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields) - fields[3] - fields[4], sum(fields)  # busy (minus idle, iowait), total

    def __enter__(self) -> MachineLoad:
        self.load_before = round(os.getloadavg()[0], 2)
        self._busy, self._total = self._stat()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, total = self._stat()
        self.busy_fraction = round((busy - self._busy) / max(1, total - self._total), 3)
        self.load_after = round(os.getloadavg()[0], 2)

    def as_dict(self) -> dict[str, float]:
        return {
            "cpu_busy_fraction": self.busy_fraction,
            "loadavg_1m_before": self.load_before,
            "loadavg_1m_after": self.load_after,
        }


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "unknown",
        )
        if Path("/proc/cpuinfo").exists()
        else "",
    }


def write_result(name: str, data: dict) -> Path:
    """bench/results/<name>.json with the machine description and the time of the run."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "bench": name,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        **data,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def load_cases(path: Path | None = None) -> list[dict]:
    path = path or ROOT / "eval" / "sample_cases.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
