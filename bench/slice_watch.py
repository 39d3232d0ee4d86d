"""`gunicorn … bench.slice_watch:app`: the real app plus a record of how much CPU each greenlet
uses between two switches (bench only).

Why: gevent runs ready greenlets in groups of 50 callbacks and polls for I/O (a /health request,
the next token on a stream) only between groups, so what a waiting request sees is about 50 of
the slices ahead of it. The slices are measured on the main thread's CPU clock, so a busy machine
that preempts the worker does not inflate them as it inflates wall-clock stalls (bench/loop_watch.py).

`POST /_bench/slices` answers (and resets) {"n", "cpu_s", "p50_ms", "p90_ms", "p99_ms", "max_ms",
"over_2ms": {site: [count, cpu_s]}}: the site is the innermost frame of our own code (or the
library frame) where a slice longer than 2 ms gave the loop back.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict

import greenlet

from wsgi import app

LONG_S = 0.002
_hub_names = ("Hub",)
_slices: list[float] = []
_long: dict[str, list] = defaultdict(lambda: [0, 0.0])
_last = [time.thread_time()]


def _site(frame) -> str:
    first = None
    while frame is not None:
        name = frame.f_code.co_filename
        if first is None and "/gevent/" not in name and "/greenlet/" not in name:
            first = f"{name.split('site-packages/')[-1]}:{frame.f_code.co_name}"
        if "/wwhd/" in name:
            own = f"{name.split('/wwhd/')[-1]}:{frame.f_lineno}:{frame.f_code.co_name}"
            return own if first is None or first.startswith("/") else f"{own} < {first}"
        frame = frame.f_back
    return first or "?"


def _trace(event, args) -> None:
    if event not in ("switch", "throw"):
        return
    now = time.thread_time()
    spent, _last[0] = now - _last[0], now
    origin = args[0]
    if type(origin).__name__ in _hub_names:
        return
    _slices.append(spent)
    if spent > LONG_S:
        entry = _long[_site(origin.gr_frame)]
        entry[0] += 1
        entry[1] += spent


greenlet.settrace(_trace)


def _report() -> dict:
    data = sorted(_slices)
    pick = (
        (lambda q: round(data[min(len(data) - 1, int(q * len(data)))] * 1000, 3))
        if data
        else (lambda q: None)
    )
    out = {
        "n": len(data),
        "cpu_s": round(sum(data), 3),
        "p50_ms": pick(0.5),
        "p90_ms": pick(0.9),
        "p99_ms": pick(0.99),
        "max_ms": round(data[-1] * 1000, 3) if data else None,
        "over_2ms": {
            k: [v[0], round(v[1], 4)] for k, v in sorted(_long.items(), key=lambda kv: -kv[1][1])
        },
    }
    _slices.clear()
    _long.clear()
    return out


_serve = app.wsgi_app


def _bench_paths(environ, start_response):
    if environ.get("PATH_INFO") == "/_bench/slices":
        body = json.dumps(_report()).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    return _serve(environ, start_response)


# The Flask app stays the WSGI callable, so post_worker_init builds the dependencies and freezes
# the start-up heap as it does for `wsgi:app` (bench/profiled_wsgi.py says why that matters).
app.wsgi_app = _bench_paths
