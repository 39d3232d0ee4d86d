"""SQLite WAL checkpoints in a real OS thread when gunicorn's gevent worker serves (embedded default).

In WAL mode the connection whose commit pushes the log past 1,000 pages copies it into the
database file and fsyncs, inside that commit. Under gevent every greenlet shares one OS thread, so
that fsync stalled the loop: the upload of a 10 MB transcript (an 8 MB `content` row after the
10 MB original was written) and the chunk rows of its job held /health for 0.3-0.6 s at a time
(bench/loop_watch.py). The serving worker's connections therefore turn automatic checkpoints off
(database.py) and this thread checkpoints every second instead: sqlite3 releases the GIL while it
copies and syncs, so the loop keeps running. PASSIVE never waits for readers or writers; what it
cannot copy now it copies on a later pass. Without gevent SQLite checkpoints as usual.
"""

from __future__ import annotations

import logging
import sqlite3

log = logging.getLogger(__name__)

INTERVAL_S = 1.0
_started: set[str] = set()


def start(path: str, interval: float = INTERVAL_S) -> bool:
    """Checkpoint the database file at `path` every `interval` seconds from a real OS thread
    (once per file and process). False when it was already running."""
    from gevent import monkey

    if path in _started:
        return False
    _started.add(path)
    start_thread = monkey.get_original("_thread", "start_new_thread")
    sleep = monkey.get_original("time", "sleep")
    start_thread(_run, (path, interval, sleep))
    return True


def _run(path: str, interval: float, sleep) -> None:
    connection = None
    while True:
        sleep(interval)
        try:
            if connection is None:
                connection = sqlite3.connect(path, timeout=0, check_same_thread=False)
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:  # busy or the file moved: the next pass tries again
            log.warning("sqlite checkpoint failed", exc_info=True)
            if connection is not None:
                connection.close()
            connection = None
