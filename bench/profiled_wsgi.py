"""`gunicorn … bench.profiled_wsgi:app`: the real app behind a CPU-weighted stack sampler and a
first-token CPU meter (bench only).

`POST /_bench/profile/start` starts sampling, `POST /_bench/profile/stop` stops and answers the
collapsed stacks as JSON ({"stacks": {"file:function;…": cpu_seconds}, "main_cpu_s", "samples"}).
`POST /_bench/first_token` answers (and forgets) the worker's CPU from each `/chat/stream`
request's arrival in the app to its first `token` frame, in seconds: the server's own work before
the first token, which a busy machine does not inflate as it does the wall-clock time (every
greenlet runs on the main thread, so its CPU clock counts all of it; with sequential turns, all of
it is that turn's). All paths are answered here, before the app sees the request, so the app is
unchanged.

Why a sampler and not cProfile: every request, the turn's worker and the pipeline are greenlets of
one OS thread, so a deterministic profiler sees greenlet switches as nonsense call nesting and
inflates the many tiny calls per token (pydantic, callbacks) it is supposed to measure. A real OS
thread instead reads the main thread's current frame (the running greenlet's) every 0.2 ms and
weights each stack by the main thread's CPU time since the previous sample: time spent idle in the
gevent hub weighs ~0, and the weights add up to the thread's CPU.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict

from gevent import monkey

from wsgi import app

_start_thread = monkey.get_original("_thread", "start_new_thread")
_get_ident = monkey.get_original("_thread", "get_ident")
_sleep = monkey.get_original("time", "sleep")
_allocate_lock = monkey.get_original("_thread", "allocate_lock")
MAIN = _get_ident()  # the module is imported by the worker's main thread, which runs every greenlet
INTERVAL_S = 0.0002
MAX_DEPTH = 80


class _Sampler:
    def __init__(self) -> None:
        self.stacks: dict[str, float] = defaultdict(float)
        self.samples = 0
        self.running = False
        self.main_cpu = 0.0
        self._done = _allocate_lock()

    def _run(self) -> None:
        clock = time.pthread_getcpuclockid(MAIN)
        last = time.clock_gettime(clock)
        first = last
        while self.running:
            _sleep(INTERVAL_S)
            frame = sys._current_frames().get(MAIN)
            now = time.clock_gettime(clock)
            weight, last = now - last, now
            if frame is None or weight <= 0:
                continue
            parts = []
            while frame is not None and len(parts) < MAX_DEPTH:
                code = frame.f_code
                parts.append(f"{code.co_filename}:{code.co_name}")
                frame = frame.f_back
            self.stacks[";".join(reversed(parts))] += weight
            self.samples += 1
        self.main_cpu = last - first
        self._done.release()

    def start(self) -> None:
        self.stacks.clear()
        self.samples = 0
        self.running = True
        self._done.acquire()
        # Sampling needs the GIL back quickly from the busy main thread (default switch: 5 ms).
        # Samples still land preferentially where the worker releases the GIL (socket I/O, SQLite
        # calls, os.urandom): a short switch interval bounds how much of the Python work before
        # such a call is charged to it (≈ 0.1-0.3 ms per sample).
        sys.setswitchinterval(0.0001)
        _start_thread(self._run, ())

    def stop(self) -> dict:
        self.running = False
        self._done.acquire()
        self._done.release()
        sys.setswitchinterval(0.005)
        return {"stacks": dict(self.stacks), "samples": self.samples, "main_cpu_s": self.main_cpu}


_sampler = _Sampler()
_first_token_cpu: list[float] = []


class _FirstTokenMeter:
    """The response body of one stream, noting the main thread's CPU clock at its first token."""

    def __init__(self, body, started: float):
        self.body, self.started, self.seen = body, started, False

    def __iter__(self):
        for chunk in self.body:
            if not self.seen and b"event: token" in (
                chunk if isinstance(chunk, bytes) else chunk.encode()
            ):
                self.seen = True
                _first_token_cpu.append(time.thread_time() - self.started)
            yield chunk

    def close(self) -> None:  # the WSGI server's close() must reach the app's (reader leases)
        close = getattr(self.body, "close", None)
        if close is not None:
            close()


_serve = app.wsgi_app


def _bench_paths(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/api/v1/chat/stream":
        started = time.thread_time()
        return _FirstTokenMeter(_serve(environ, start_response), started)
    if path == "/_bench/first_token":
        body = json.dumps({"cpu_s": _first_token_cpu[:]}).encode()
        _first_token_cpu.clear()
    elif path == "/_bench/profile/start":
        _sampler.start()
        body = b'{"started": true}'
    elif path == "/_bench/profile/stop":
        body = json.dumps(_sampler.stop()).encode()
    else:
        return _serve(environ, start_response)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


# The Flask app itself stays the WSGI callable (only its wsgi_app is wrapped), so gunicorn.conf.py's
# post_worker_init builds the dependencies and freezes the start-up heap as for `wsgi:app`: without
# gc.freeze() full collections traverse the index's points and the CPU per turn is not production's.
app.wsgi_app = _bench_paths
