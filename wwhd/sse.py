"""Server-sent event framing, response headers, and the response that follows a turn's events."""

from __future__ import annotations

import json
import uuid

from flask import Response

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
PING = ": ping\n\n"
TERMINAL = ("done", "error")


def payload(event: str, data: dict) -> str:
    """The `data:` line's JSON: ASCII-safe, repeating the type (made once, by the turn's worker)."""
    return json.dumps({"type": event, **data}, ensure_ascii=True, separators=(",", ":"))


def frame_payload(event_id: int, event: str, data: str) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n"


def frame(event_id: int, event: str, data: dict) -> str:
    """One event as a single string (written in one piece)."""
    return frame_payload(event_id, event, payload(event, data))


class Follower:
    """The SSE body of a turn: its stored events after `after`, then the live ones until `done` or
    `error`, with a ping comment after `ping` seconds of silence (ids count events only, so they
    stay consecutive for Last-Event-ID).

    Events that are already there are written together, in one socket write. While it reads it
    holds a reader lease on the stream (renewed every loop, `ping` + 5 s long) so the turn's
    worker knows someone listens; close() — what the WSGI server calls when the client is gone,
    even before the first read — gives the lease back at once.
    """

    def __init__(self, store, key: str, after: int, ping: float):
        self.store, self.key, self.last, self.ping = store, key, after, ping
        self.reader = uuid.uuid4().hex
        self.lease = ping + 5
        self.finished = False
        if after:
            seen = store.read(key, after - 1, 0)
            if seen and seen[0][1] in TERMINAL:  # the client has the whole turn already
                self.finished = True
                return
        store.join(key, self.reader, self.lease)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.finished:
            raise StopIteration
        entries = self.store.read(self.key, self.last, self.ping)
        self.store.join(self.key, self.reader, self.lease)
        if entries is None:  # expired: nothing more will come
            self.close()
            raise StopIteration
        if not entries:
            return PING
        parts = []
        for number, event, data in entries:
            parts.append(frame_payload(number, event, data))
            self.last = number
            if event in TERMINAL:
                self.close()
                break
        return "".join(parts)

    def events(self):
        """(event, data) pairs instead of frames, for the JSON endpoint."""
        while not self.finished:
            entries = self.store.read(self.key, self.last, self.ping)
            self.store.join(self.key, self.reader, self.lease)
            if entries is None:
                break
            for number, event, data in entries:
                self.last = number
                yield event, json.loads(data)
                if event in TERMINAL:
                    self.close()
                    return
        self.close()

    def close(self) -> None:
        if not self.finished:
            self.finished = True
            self.store.leave(self.key, self.reader)


def response(stream) -> Response:
    return Response(stream, mimetype="text/event-stream", headers=HEADERS)
