"""Where a turn's events live for a few minutes, so any response (the original or a resumed one, in
this process or on another task) reads them: in process memory, or in Redis when REDIS_URL is set.

One writer per stream (the turn's worker) numbers its events 1, 2, 3…: the SSE `id:`, which a
client sends back as `Last-Event-ID`. Readers also register here while they read, so the worker
knows whether anyone is still listening (the grace period of turns.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import Flask

from .extensions import per_app

PREFIX = "wwhd:turn:"
# (number, event name, JSON payload as framed by sse.payload)
Entry = tuple[int, str, str]


@dataclass
class _Stream:
    changed: threading.Condition  # on the store's lock: an append wakes this stream's readers only
    expires: float
    events: list[tuple[str, str]] = field(default_factory=list)
    readers: dict[str, float] = field(default_factory=dict)  # reader id → lease end (monotonic)


class MemoryStreams:
    """One process's streams (the embedded default runs one process)."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._streams: dict[str, _Stream] = {}
        # Reentrant only for its _is_owned: a Condition over a plain Lock checks ownership with a
        # non-blocking acquire, and gevent sleeps when one fails, so every notify gave the loop
        # away (tests/test_stream_store_gevent.py).
        self._lock = threading.RLock()

    def _live(self, key: str) -> _Stream | None:
        stream = self._streams.get(key)
        if stream is not None and stream.expires < time.monotonic():
            del self._streams[key]
            return None
        return stream

    def create(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            # Expired streams go when a new one starts: no sweeper thread for a dict.
            for old in [k for k, s in self._streams.items() if s.expires < now]:
                del self._streams[old]
            self._streams[key] = _Stream(threading.Condition(self._lock), now + self.ttl)

    def append(self, key: str, first: int, events: list[tuple[str, str]]) -> None:
        with self._lock:
            stream = self._streams.get(key)
            if stream is None:  # expired while its turn still ran: start it again
                stream = self._streams[key] = _Stream(threading.Condition(self._lock), 0.0)
            stream.events.extend(events)
            stream.expires = time.monotonic() + self.ttl
            stream.changed.notify_all()

    def exists(self, key: str) -> bool:
        with self._lock:
            return self._live(key) is not None

    def length(self, key: str) -> int:
        with self._lock:
            stream = self._live(key)
            return len(stream.events) if stream is not None else 0

    def read(self, key: str, after: int, timeout: float) -> list[Entry] | None:
        """Events numbered above `after`, waiting up to `timeout` for one; None: no such stream."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                stream = self._live(key)
                if stream is None:
                    return None
                if len(stream.events) > after:
                    return [
                        (number, event, payload)
                        for number, (event, payload) in enumerate(
                            stream.events[after:], start=after + 1
                        )
                    ]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                stream.changed.wait(remaining)

    def join(self, key: str, reader: str, lease: float) -> None:
        with self._lock:
            stream = self._live(key)
            if stream is not None:
                stream.readers[reader] = time.monotonic() + lease

    def leave(self, key: str, reader: str) -> None:
        with self._lock:
            stream = self._streams.get(key)
            if stream is not None:
                stream.readers.pop(reader, None)

    def readers(self, key: str) -> int:
        now = time.monotonic()
        with self._lock:
            stream = self._streams.get(key)
            if stream is None:
                return 0
            stream.readers = {r: end for r, end in stream.readers.items() if end > now}
            return len(stream.readers)


class RedisStreams:
    """Shared by every process and task: a Redis stream per turn (entry ids 0-1, 0-2… are the
    event numbers, so XREAD after `0-<Last-Event-ID>` is the resume), and a sorted set of readers
    scored by the end of their lease. Both expire `ttl` seconds after the last event."""

    def __init__(self, url: str, ttl: float):
        import redis

        self.ttl = max(1, int(ttl))
        # Short connect timeout: an unreachable Redis must fail a turn's start fast (it then
        # streams from memory, see fallback()), not hang the request.
        self._redis = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=2, health_check_interval=30
        )

    def create(self, key: str) -> None:
        self._redis.delete(PREFIX + key, PREFIX + key + ":readers")

    def append(self, key: str, first: int, events: list[tuple[str, str]]) -> None:
        name = PREFIX + key
        pipe = self._redis.pipeline(transaction=False)
        for number, (event, payload) in enumerate(events, start=first):
            pipe.xadd(name, {"e": event, "d": payload}, id=f"0-{number}")
        pipe.expire(name, self.ttl)
        pipe.expire(name + ":readers", self.ttl)
        pipe.execute()

    def exists(self, key: str) -> bool:
        return bool(self._redis.exists(PREFIX + key))

    def length(self, key: str) -> int:
        return int(self._redis.xlen(PREFIX + key))

    def read(self, key: str, after: int, timeout: float) -> list[Entry] | None:
        name = PREFIX + key
        reply = self._redis.xread({name: f"0-{after}"}, block=max(1, int(timeout * 1000)))
        if not reply:
            return None if not self._redis.exists(name) else []
        return [
            (int(entry_id.split("-")[1]), fields["e"], fields["d"])
            for entry_id, fields in reply[0][1]
        ]

    def join(self, key: str, reader: str, lease: float) -> None:
        name = PREFIX + key + ":readers"
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(name, {reader: time.time() + lease})
        pipe.expire(name, self.ttl)
        pipe.execute()

    def leave(self, key: str, reader: str) -> None:
        self._redis.zrem(PREFIX + key + ":readers", reader)

    def readers(self, key: str) -> int:
        # Wall clock, not monotonic: the leases are compared across processes.
        return int(self._redis.zcount(PREFIX + key + ":readers", time.time(), "+inf"))


def make_store(config: Mapping) -> MemoryStreams | RedisStreams:
    ttl = config["STREAM_TTL_SECONDS"]
    return RedisStreams(config["REDIS_URL"], ttl) if config["REDIS_URL"] else MemoryStreams(ttl)


def fallback(app: Flask) -> MemoryStreams:
    """This process's memory, for turns that start while Redis is unreachable: they stream and
    save as usual, only a resume on another task cannot find them."""
    return per_app(
        app,
        "wwhd_streams_fallback",
        lambda: MemoryStreams(app.config["STREAM_TTL_SECONDS"]),
    )


def get_store(app: Flask) -> MemoryStreams | RedisStreams:
    return per_app(app, "wwhd_streams", lambda: make_store(app.config))
