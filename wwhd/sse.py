"""Server-sent event framing and response headers."""

from __future__ import annotations

import json

from flask import Response

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
PING = ": ping\n\n"


def frame(event_id: int, event: str, data: dict) -> str:
    """One event as a single string (written in one piece), ASCII-safe JSON that repeats the type."""
    payload = json.dumps({"type": event, **data}, ensure_ascii=True, separators=(",", ":"))
    return f"id: {event_id}\nevent: {event}\ndata: {payload}\n\n"


def response(stream) -> Response:
    return Response(stream, mimetype="text/event-stream", headers=HEADERS)
