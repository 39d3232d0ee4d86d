"""Links to sources: YouTube video ids, deep links to a second or a page, and timestamps."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

_YOUTUBE_PATH = re.compile(r"^/(embed|shorts|live)/([\w-]+)")


def format_timestamp(seconds: float | None, hours: bool = False) -> str:
    """ "HH:MM:SS" from one hour on (or when `hours`), "MM:SS" below; "" for None."""
    if seconds is None:
        return ""
    total = max(int(seconds), 0)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h or hours:
        return f"{h:02d}:{m:02d}:{s:02d}"
    return f"{m:02d}:{s:02d}"


def citation_timestamp(seconds: float | None) -> str:
    """Citations always say HH:MM:SS: one unambiguous shape for clients to parse."""
    return format_timestamp(seconds, hours=True)


def youtube_id(url: str | None) -> str | None:
    """The video id of a youtube.com/watch, youtu.be, /embed, /shorts or /live link, else None."""
    if not url:
        return None
    parsed = urlparse(url)
    host = parsed.netloc.lower().removeprefix("www.").removeprefix("m.")
    if host == "youtu.be":
        return parsed.path.strip("/").split("/")[0] or None
    if host.endswith("youtube.com"):
        if parsed.path == "/watch":
            return (parse_qs(parsed.query).get("v") or [None])[0]
        match = _YOUTUBE_PATH.match(parsed.path)
        return match.group(2) if match else None
    return None


def deep_link(payload: dict) -> str:
    """A link to the exact second of the video, else the page of the source, else the source."""
    video = youtube_id(payload.get("youtube_url"))
    start = payload.get("start_s")
    if video:
        second = f"&t={int(start)}s" if start is not None else ""
        return f"https://www.youtube.com/watch?v={video}{second}"
    url = payload.get("source_url") or payload.get("youtube_url") or ""
    if url and payload.get("page"):
        return f"{url}#page={payload['page']}"
    return url
