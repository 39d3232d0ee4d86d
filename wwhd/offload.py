"""Run CPU-heavy work (parsing, chunking, BM25 vectors) off the gevent loop when gevent is active."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def _gevent_active() -> bool:
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
    if not _gevent_active():
        return fn(*args, **kwargs)
    return sys.modules["gevent"].get_hub().threadpool.apply(fn, args, kwargs)
