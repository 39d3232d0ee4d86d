"""Run CPU-heavy work (parsing, chunking, BM25 vectors) off the gevent loop when gevent is active."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def gevent_active() -> bool:
    # Looked up, not imported: a process that has not imported gevent.monkey has patched nothing,
    # and importing gevent (~0.1 s) in every CLI call and test process to learn that is waste.
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


def cpu_bound(fn: Callable[..., T], *args, **kwargs) -> T:
    """Call `fn` in gevent's pool of real OS threads when gunicorn's gevent worker is running.

    A greenlet that parses a 10 MB transcript holds the loop for seconds and stalls every open
    chat stream on that worker; in a real thread the GIL still switches every few milliseconds,
    so streams keep flowing. `fn` must not touch the DB session or other greenlet-bound state.
    Without gevent (tests, CLI) it is a plain call.
    """
    if not gevent_active():
        return fn(*args, **kwargs)
    return sys.modules["gevent"].get_hub().threadpool.apply(fn, args, kwargs)


def pause() -> None:
    """Let other greenlets run between two bounded pieces of work (an upsert batch, a page of rows).
    Not `sleep(0)`: gevent then runs the greenlets already scheduled but does not poll for I/O, so
    a request waiting on its socket waited through every batch of a job (0.6 s spans, measured
    with bench/loop_watch.py). A 1 ms timer lets the loop poll. Without gevent a zero sleep is
    only a thread switch."""
    time.sleep(0.001 if gevent_active() else 0)
