"""Plain text and Markdown, with optional line timestamps ("[00:01:02] ...", "1:02 - ...")."""

from __future__ import annotations

import re

from .document import ParsedDocument, Section
from .timecode import seconds

# When a timed line is the last one we have no next start; a typical spoken line lasts seconds.
LAST_LINE_FALLBACK_S = 30.0

MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
MD_HINTS = re.compile(r"^ {0,3}(?:#{1,6}[ \t]+\S|```)|\]\(https?://", re.MULTILINE)
FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)

# Line timestamps: "[00:01:02] text", "[01:02] text", "00:01:02 text", "1:02 - text", "(01:02) text".
_LINE_TS = re.compile(
    r"^[ \t]*(?:\[(?P<b>[\d:.,]+)\]|\((?P<p>[\d:.,]+)\)|(?P<n>\d{1,3}(?::\d{2}){1,2}(?:[.,]\d{1,3})?)(?=\s|$))"
    r"[ \t]*(?:[-–—:|][ \t]+)?(?P<text>.*)$"
)
_TS_VALUE = re.compile(r"^(?:(\d{1,3}):)?(\d{1,3}):(\d{2})(?:[.,](\d{1,3}))?$")


def looks_like_markdown(text: str) -> bool:
    stripped = text.lstrip()
    return bool(FRONT_MATTER.match(stripped) or MD_HINTS.search(text, 0, 65536))


def parse_plain(text: str, markdown: bool) -> ParsedDocument:
    title = None
    front = FRONT_MATTER.match(text.lstrip()) if markdown else None
    if front:
        text = text.lstrip()[front.end() :]
        for line in front.group(1).splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "title" and value.strip():
                title = value.strip().strip("\"'")
    if markdown and title is None:
        heading = MD_HEADING.search(text)
        if heading:
            title = heading.group(2).strip()
        else:
            setext = re.search(r"^(\S.*)\n=+[ \t]*$", text, re.MULTILINE)
            title = setext.group(1).strip() if setext else None
    sections = _timed_lines(text)
    if sections is None:
        sections = _markdown_sections(text) if markdown else _untimed(text)
    return ParsedDocument("markdown" if markdown else "text", sections, title or None)


def _line_time(line: str) -> tuple[float, str, bool] | None:
    """(seconds, rest of line, bracketed) when the line starts with a timestamp."""
    match = _LINE_TS.match(line)
    if not match:
        return None
    raw = match.group("b") or match.group("p") or match.group("n")
    value = _TS_VALUE.match(raw)
    if not value:
        return None
    at = seconds(*value.groups())
    if at is None:
        return None
    return at, match.group("text").strip(), match.group("n") is None


def _untimed(text: str) -> list[Section]:
    text = text.strip()
    return [Section(text)] if text else []


def _markdown_sections(text: str) -> list[Section]:
    # One section per heading so chunks prefer to break where the author did.
    starts = [0]
    in_fence = False
    offset = 0
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        elif not in_fence and offset and MD_HEADING.match(line.rstrip("\n")):
            starts.append(offset)
        offset += len(line)
    starts.append(len(text))
    return [Section(part) for a, b in zip(starts, starts[1:]) if (part := text[a:b].strip())]


def _timed_lines(text: str) -> list[Section] | None:
    """Sections per timestamped line, or None when the text is not a timed transcript."""
    lines = text.split("\n")
    stamps = [(i, hit) for i, line in enumerate(lines) if (hit := _line_time(line))]
    if not stamps:
        return None
    if not any(bracketed for _, (_, _, bracketed) in stamps):
        # Bare "3:16 ..." lines may be verses or times of day: demand several, mostly in order.
        times = [t for _, (t, _, _) in stamps]
        ordered = sum(1 for a, b in zip(times, times[1:]) if b >= a)
        if len(times) < 2 or ordered < 0.8 * (len(times) - 1):
            return None

    preamble = "\n".join(lines[: stamps[0][0]]).strip()
    sections: list[Section] = [Section(preamble)] if preamble else []
    timed: list[tuple[float, str]] = []
    bounds = [i for i, _ in stamps] + [len(lines)]
    for (i, (start, first, _)), end_line in zip(stamps, bounds[1:]):
        body = "\n".join([first, *lines[i + 1 : end_line]]).strip()
        timed.append((start, body))

    starts = [start for start, _ in timed]
    gaps = sorted(b - a for a, b in zip(starts, starts[1:]) if b > a)
    last_duration = (
        min(gaps[len(gaps) // 2], LAST_LINE_FALLBACK_S) if gaps else LAST_LINE_FALLBACK_S
    )
    for n, (start, body) in enumerate(timed):
        # A stamp alone on a line with its text below it has the text as continuation.
        if not body:
            continue
        end = starts[n + 1] if n + 1 < len(starts) else start + last_duration
        sections.append(Section(body, start_s=start, end_s=max(end, start)))
    return sections
