"""Timestamps as written in transcripts: "1:02", "00:01:02", "00:01:02,500", "00:01:02.5"."""

from __future__ import annotations

# hours? : minutes : seconds [.,:] fraction? — four groups, in that order.
TIME = r"(?:(\d{1,3}):)?(\d{1,3}):(\d{2})(?:[.,:](\d{1,3}))?"


def seconds(hours: str | None, minutes: str, secs: str, fraction: str | None) -> float | None:
    """The groups of TIME as seconds, or None when minutes or seconds are out of range."""
    m, s = int(minutes), int(secs)
    if s >= 60 or (hours is not None and m >= 60):
        return None
    # Whole milliseconds, divided once, so "03.639" is 3.639 and not 3.6390000000000002.
    millis = (int(hours or 0) * 3600 + m * 60 + s) * 1000 + int((fraction or "0").ljust(3, "0"))
    return millis / 1000
