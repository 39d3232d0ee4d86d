"""`gunicorn … bench.loop_watch:app`: the real app plus a watchdog that records what holds the
gevent loop (bench only). Set LOOP_WATCH_FILE to a path; each stall longer than LOOP_WATCH_MS
(default 30) is appended as a JSON line: {"at": unix time, "ms": duration, "stacks": {stack: n}}.

A greenlet stamps the time every 5 ms; a real OS thread checks the stamp every 2 ms and, while it
is stale, samples the main thread's stack (the running greenlet's). gevent's own monitor thread
prints the whole greenlet tree per report, which stalls the worker it is measuring.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter

import gevent
from gevent import monkey

from wsgi import app  # noqa: F401  (served as is)

_start_thread = monkey.get_original("_thread", "start_new_thread")
_get_ident = monkey.get_original("_thread", "get_ident")
_sleep = monkey.get_original("time", "sleep")
MAIN = _get_ident()
PATH = os.environ.get("LOOP_WATCH_FILE", "")
LIMIT_S = float(os.environ.get("LOOP_WATCH_MS", "30")) / 1000
_stamp = [time.monotonic()]


def _tick() -> None:
    while True:
        _stamp[0] = time.monotonic()
        gevent.sleep(0.005)


def _stack() -> str:
    frame = sys._current_frames().get(MAIN)
    parts = []
    while frame is not None:
        code = frame.f_code
        name = code.co_filename
        if "/gevent/" not in name and "/greenlet/" not in name:
            short = name.split("/site-packages/")[-1].split("/wt/ingest/")[-1]
            parts.append(f"{short}:{frame.f_lineno}:{code.co_name}")
        frame = frame.f_back
    return " < ".join(parts[:8])


def _watch() -> None:
    stacks: Counter = Counter()
    started = None
    while True:
        _sleep(0.002)
        age = time.monotonic() - _stamp[0]
        if age > LIMIT_S:
            if started is None:
                started = _stamp[0]
            stacks[_stack()] += 1
        elif started is not None:
            with open(PATH, "a") as out:
                span = {"at": time.time() - (time.monotonic() - started), "ms": 0.0}
                span["ms"] = round((_stamp[0] - started) * 1000, 1)
                span["stacks"] = dict(stacks.most_common(4))
                out.write(json.dumps(span) + "\n")
            stacks.clear()
            started = None


_gc_started = [0.0]


def _gc_timer(phase: str, info: dict) -> None:
    """Collections longer than 20 ms, as {"gc": generation, "ms": …}: a full collection holds the
    GIL (and so the loop) for as long as it traverses the heap, and the sampler sees nothing."""
    if phase == "start":
        _gc_started[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - _gc_started[0]) * 1000
    if ms > 20:
        with open(PATH, "a") as out:
            out.write(json.dumps({"at": time.time(), "gc": info["generation"], "ms": round(ms, 1)}))
            out.write("\n")


if PATH:
    import gc

    gc.callbacks.append(_gc_timer)
    gevent.spawn(_tick)
    _start_thread(_watch, ())
