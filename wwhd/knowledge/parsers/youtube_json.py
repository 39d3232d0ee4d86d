"""YouTube transcripts as JSON: a list of {text, start, duration}, or YouTube's own "json3" events."""

from __future__ import annotations

import html
import json
import math

from .decoding import SPACES, clean
from .document import MALFORMED, ParseError, Section


def looks_like_youtube(value: object) -> bool:
    if isinstance(value, dict):
        return isinstance(value.get("events"), list)  # YouTube's own "json3" caption format
    if not isinstance(value, list) or not value:
        return False
    # The first entry decides; later bad entries get a precise error from the parser.
    first = value[0]
    return isinstance(first, dict) and "text" in first and "start" in first


def _number(value: object) -> float | None:
    """A finite, non-negative number from a JSON number or numeric string, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def parse_youtube_json(text: str) -> list[Section]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"transcript is not valid JSON ({exc})", code=MALFORMED) from exc
    items: list[tuple[float, float | None, str]] = []
    if isinstance(value, dict):
        for event in value.get("events") or []:
            if not isinstance(event, dict) or not isinstance(event.get("segs"), list):
                continue  # window and style events carry no text
            body = "".join(
                seg["utf8"]
                for seg in event["segs"]
                if isinstance(seg, dict) and isinstance(seg.get("utf8"), str)
            )
            start = _number(event.get("tStartMs"))
            if start is None:
                raise ParseError("transcript event has no numeric 'tStartMs'", code=MALFORMED)
            duration = _number(event.get("dDurationMs"))
            items.append((start / 1000, None if duration is None else duration / 1000, body))
    else:
        for n, item in enumerate(value, start=1):
            if not isinstance(item, dict):
                raise ParseError(
                    f"transcript entry {n} is not an object with text and start", code=MALFORMED
                )
            start = _number(item.get("start"))
            if start is None:
                raise ParseError(f"transcript entry {n} has no numeric 'start'", code=MALFORMED)
            body = item.get("text")
            if body is not None and not isinstance(body, str):
                raise ParseError(f"transcript entry {n} has a non-text 'text'", code=MALFORMED)
            items.append((start, _number(item.get("duration")), body or ""))

    sections: list[Section] = []
    for n, (start, duration, body) in enumerate(items):
        body = SPACES.sub(" ", html.unescape(clean(body))).strip()
        if not body:
            continue
        if duration is None:
            duration = max(items[n + 1][0] - start, 0.0) if n + 1 < len(items) else 0.0
        sections.append(Section(body, start_s=start, end_s=start + duration))
    return sections
