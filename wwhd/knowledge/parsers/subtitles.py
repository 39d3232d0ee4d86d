"""SRT and WebVTT: one cue grammar; WebVTT adds NOTE/STYLE/REGION blocks and stricter blank lines."""

from __future__ import annotations

import html
import re

from .document import MALFORMED, ParseError, Section
from .timecode import TIME, seconds

_CUE_TIMING = re.compile(rf"^[ \t]*{TIME}[ \t]*-->[ \t]*{TIME}(?:[ \t]+.*)?$")
# A cue at the very start (optionally after its number): the content is SRT or VTT whatever its name.
STARTS_WITH_CUE = re.compile(rf"^(?:\d+[ \t]*\n)?[ \t]*{TIME}[ \t]*-->")
HAS_CUE = re.compile(rf"^[ \t]*{TIME}[ \t]*-->[ \t]*{TIME}", re.MULTILINE)

_TAG = re.compile(r"<[^>\n]*>|\{\\[^}\n]*\}")
_VTT_BLOCK = re.compile(r"(?:NOTE|STYLE|REGION)(?:\s|$)")


def parse_srt(text: str) -> list[Section]:
    return parse_cues(text, vtt=False)


def parse_vtt(text: str) -> list[Section]:
    return parse_cues(text, vtt=True)


def _cue_line(line: str) -> str:
    # Most cue lines hold no markup: the regex runs only when a tag could be there (a third of
    # a 10 MB transcript's parse time went to substituting nothing).
    if "<" in line or "{" in line:
        line = _TAG.sub("", line)
    if "&" in line:
        line = html.unescape(line)
    # str.split() splits on exactly what the regex \s+ matches and drops the ends: the same result.
    return " ".join(line.split())


def _cue_time(groups: tuple[str | None, ...], known: dict) -> float:
    # A cue's end is usually the next cue's start: each distinct timestamp is parsed once.
    at = known.get(groups)
    if at is None:
        at = known[groups] = seconds(*groups)
        if at is None:
            raise ParseError("subtitle cue has an invalid timestamp", code=MALFORMED)
    return at


def parse_cues(text: str, vtt: bool) -> list[Section]:
    """SRT or WebVTT cues, markup stripped, auto-caption roll-up repeats merged."""
    cues: list[tuple[float, float, list[str]]] = []
    pending: list[str] = []  # lines outside any cue: identifiers, headers or stray text
    current: list[str] | None = None
    skipping_block = False
    at_block_start = True
    known: dict[tuple, float] = {}
    for line in text.split("\n"):
        # WebVTT cue text ends only at a truly empty line; YouTube puts " " lines inside cues.
        blank = line == "" if vtt else not line.strip()
        if blank:
            current, skipping_block, at_block_start = None, False, True
            continue
        if skipping_block:
            continue
        if vtt and at_block_start and current is None and _VTT_BLOCK.match(line):
            skipping_block, at_block_start = True, False
            continue
        at_block_start = False
        timing = _CUE_TIMING.match(line) if "-->" in line else None
        if timing:
            if current is not None and current and current[-1].strip().isdigit():
                current.pop()  # an SRT cue number with no blank line before it
            elif pending:
                pending.pop()  # the identifier line right before the timing
            if cues and pending:
                cues[-1][2].extend(pending)
            pending = []
            groups = timing.groups()
            start, end = _cue_time(groups[:4], known), _cue_time(groups[4:], known)
            current = []
            cues.append((start, max(start, end), current))
        elif current is not None:
            current.append(line)
        else:
            pending.append(line)
    if cues and pending:
        cues[-1][2].extend(pending)
    if not cues:
        raise ParseError("subtitle file contains no cues", code=MALFORMED)

    sections: list[Section] = []
    previous: list[str] = []
    for start, end, raw in cues:
        lines = [cleaned for line in raw if (cleaned := _cue_line(line))]
        if not lines:
            continue
        # Auto-captions repeat the previous cue's line above the new one; keep only new lines.
        fresh = [line for line in lines if line not in previous]
        previous = lines
        if not fresh:
            if sections:
                last = sections[-1]
                sections[-1] = Section(last.text, last.start_s, max(last.end_s or end, end))
            continue
        sections.append(Section(" ".join(fresh), start_s=start, end_s=end))
    return sections
