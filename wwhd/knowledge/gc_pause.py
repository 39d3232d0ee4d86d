"""Ingestion's bulk work with Python's cyclic garbage collector paused.

Parsing and indexing a transcript allocate and keep hundreds of thousands of small containers
(cues, sections, rows, payloads). Each time the survivors grow by a quarter of the heap, CPython
runs a full collection over everything alive, the app and the embedded index's points included:
~1 s of a 5 MB transcript's ~3.8 CPU s (bench/ingestion.py, measured with gc.callbacks). That work
makes almost no reference cycles, so reference counting frees its garbage anyway, and collection
resumes when the pause ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from ..offload import gevent_active


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block, where the block owns its process's CPU: not under
    gevent, where the other greenlets (requests, streams) would run without it too; there the
    heavy work runs in child processes that pause it for their whole life (prepare.main). Nested
    or concurrent pauses do not stack: the first one to end resumes collection."""
    if gevent_active() or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
