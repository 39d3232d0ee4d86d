"""Requests that start a chat turn step aside once, before doing any work.

Why (gevent): a turn's start is a few ms of CPU that never waits on I/O (auth, quota, the
question's rows and their commit, the worker's start), so it runs as one long greenlet slice, and
gevent runs ready greenlets first come, first served. When 200 chats arrive together, their 200
slices are ready at once and anything that arrived with them (a `/health` probe on a new
connection) waited behind all of them: 150-250 ms (bench/concurrency.py). Stepping aside at the
request's start sends each of them once to the back of the loop's queue, so whatever came in the
same burst waits behind 200 short slices (HTTP parsing) instead of 200 long ones. A plain
`sleep(0)` is enough: what it lets through is already in the queue (offload.pause says when a
timer is needed instead). Without gevent it is a GIL hand-off.

Limiting how many starts run at once (a gate) was measured too and does not pay: see
BENCHMARKS.md §8, 2026-12-08.
"""

from __future__ import annotations

import time

from flask import Flask, request

TURN_STARTS = frozenset({"chat.stream", "chat.answer"})


def init_app(app: Flask) -> None:
    """Register right after the request id hook, so the step aside comes before any other work
    (and the access log's latency still counts it)."""

    @app.before_request
    def _step_aside():
        if request.endpoint in TURN_STARTS:
            time.sleep(0)
