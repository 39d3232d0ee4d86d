"""Sections cut into overlapping chunks on natural boundaries, plus stable chunk ids and checksums."""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import unicodedata
import uuid
from dataclasses import dataclass
from itertools import groupby

from wwhd.knowledge.parsers import Section

# A fixed namespace keeps ids identical across processes, machines and releases (Qdrant point ids).
CHUNK_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://wwhd.invalid/chunk")


@dataclass(frozen=True)
class TextPiece:
    """One indexable piece of a document.

    `start_s`/`end_s` span every section the text draws from, the overlap included, so each
    sentence of the text lies inside the interval and a deep link at `start_s` never starts after
    the passage that matched. `overlap_chars` is how many leading characters repeat the end of the
    previous chunk (0 for the first chunk of a page or document).
    """

    index: int
    text: str
    start_s: float | None
    end_s: float | None
    page: int | None
    overlap_chars: int = 0
    # (offset in text, start second) of each timed section in the chunk: lets a citation point
    # at the line that matched instead of the chunk's first second.
    marks: tuple[tuple[int, float], ...] = ()


_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"[.!?…。！？]+[\"'”’)\]]*(?=\s)")
_SENTENCE_START = re.compile(r"(?:[.!?…。！？]+[\"'”’)\]]*\s+|\n[ \t]*\n\s*)(?=\S)")
_WORD_START = re.compile(r"\s(?=\S)")
_NON_SPACE = re.compile(r"\S")


def chunk_sections(
    sections: list[Section], max_chars: int = 1500, overlap: int = 200
) -> list[TextPiece]:
    """Chunks of at most `max_chars` characters, about `overlap` of them repeated from the
    previous chunk, cut at the best boundary in the back half of each window: paragraph or
    Markdown section, then sentence end, line break, transcript cue, space; a word is cut only
    when it alone exceeds `max_chars`. Chunks never span PDF pages and overlap never crosses
    one. Timed sections are joined as running speech, so chunk text carries no timestamps.

    Raises ValueError unless 0 <= overlap < max_chars.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    if not 0 <= overlap < max_chars:
        raise ValueError("overlap must be at least 0 and smaller than max_chars")
    chunks: list[TextPiece] = []
    for page, group in groupby(sections, key=lambda section: section.page):
        stream, starts, ends, kept, blocks = _join(list(group))
        for s, e, overlap_chars in _split(stream, starts, blocks, max_chars, overlap):
            start_s, end_s = _times(starts, ends, kept, s, e)
            chunks.append(
                TextPiece(
                    len(chunks),
                    stream[s:e],
                    start_s,
                    end_s,
                    page,
                    overlap_chars,
                    _marks(starts, ends, kept, s, e),
                )
            )
    return chunks


def _join(sections: list[Section]) -> tuple[str, list[int], list[int], list[Section], list[int]]:
    """One string for a run of sections, each kept section's [start, end) offsets, and the
    starts that follow a paragraph separator (the strongest boundaries)."""
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    kept: list[Section] = []
    blocks: list[int] = []
    pos = 0
    for section in sections:
        body = section.text.strip()
        if not body:
            continue
        if kept:
            # Cues are fragments of running speech; anything else is its own paragraph.
            timed = section.start_s is not None and kept[-1].start_s is not None
            separator = " " if timed else "\n\n"
            parts.append(separator)
            pos += len(separator)
            if not timed:
                blocks.append(pos)
        starts.append(pos)
        parts.append(body)
        pos += len(body)
        ends.append(pos)
        kept.append(section)
    return "".join(parts), starts, ends, kept, blocks


def _split(
    stream: str, starts: list[int], blocks: list[int], max_chars: int, overlap: int
) -> list[tuple[int, int, int]]:
    """(start, end, overlap_chars) offsets of each chunk in `stream`, whitespace-trimmed;
    `starts` are all section offsets, `blocks` those of untimed sections (paragraph-level)."""
    spans: list[tuple[int, int, int]] = []
    first = _NON_SPACE.search(stream)
    if first is None:
        return spans
    n = len(stream)
    start = new_from = first.start()  # new_from: first character not already in a chunk
    previous_end: int | None = None
    while True:
        if n - start <= max_chars:
            cut = n
        else:
            hi = start + max_chars
            # The back half of the window keeps chunks near full; new_from + 1 guarantees progress.
            lo = max(start + max_chars // 2, new_from + 1)
            cut = _best_break(stream, lo, hi, starts, blocks, floor=new_from + 1)
        end = start + len(stream[start:cut].rstrip())
        spans.append((start, end, max(0, previous_end - start) if previous_end is not None else 0))
        following = _NON_SPACE.search(stream, cut)
        if following is None:
            return spans
        new_from = following.start()
        repeat = _overlap_start(stream, start, end, overlap)
        start = repeat if repeat is not None else new_from
        previous_end = end


def _best_break(
    stream: str, lo: int, hi: int, starts: list[int], blocks: list[int], floor: int
) -> int:
    """The cut offset in [lo, hi] at the strongest boundary, latest within a kind."""
    block = bisect.bisect_right(blocks, hi) - 1
    if block >= 0 and blocks[block] >= lo:
        return blocks[block]
    window_end = min(len(stream), hi + 2)  # one character past hi for the lookaheads
    best = -1
    for match in _PARAGRAPH.finditer(stream, lo, window_end):
        # Never right after a Markdown heading: the heading belongs with the text below it.
        if match.start() <= hi and stream[stream.rfind("\n", 0, match.start()) + 1] != "#":
            best = match.start()
    if best >= 0:
        return best
    for match in _SENTENCE_END.finditer(stream, lo, window_end):
        if match.end() <= hi:
            best = match.end()
    if best >= lo:
        return best
    best = stream.rfind("\n", lo, hi + 1)
    if best >= 0:
        return best
    cue = bisect.bisect_right(starts, hi) - 1
    if cue >= 0 and starts[cue] >= lo:
        return starts[cue]
    best = max(stream.rfind(" ", lo, hi + 1), stream.rfind("\t", lo, hi + 1))
    if best >= 0:
        return best
    # A long word fills the back half: end before it (shorter chunk) rather than cut it.
    best = max(
        stream.rfind(" ", floor, lo), stream.rfind("\t", floor, lo), stream.rfind("\n", floor, lo)
    )
    return best if best >= floor else hi


def _overlap_start(stream: str, start: int, end: int, overlap: int) -> int | None:
    """Where the next chunk starts so it repeats up to `overlap` characters before `end`:
    a sentence start when that keeps at least half the overlap, else a word start."""
    if overlap <= 0:
        return None
    lo = max(end - overlap, start + 1)
    if lo >= end:
        return None
    sentence = None
    for match in _SENTENCE_START.finditer(stream, max(lo - 8, start), end):
        if match.end() >= lo:
            sentence = match.end()
            break
    if sentence is not None and end - sentence >= overlap // 2:
        return sentence
    word = _WORD_START.search(stream, lo - 1, end)
    if word is not None:
        return word.end()
    return sentence


def _times(
    starts: list[int], ends: list[int], sections: list[Section], s: int, e: int
) -> tuple[float | None, float | None]:
    """Earliest start and latest end of the sections overlapping [s, e)."""
    first = max(bisect.bisect_right(starts, s) - 1, 0)
    if ends and ends[first] <= s:
        first += 1
    last = bisect.bisect_left(starts, e) - 1
    begin: float | None = None
    finish: float | None = None
    for section in sections[first : last + 1]:
        if section.start_s is None:
            continue
        stop = section.end_s if section.end_s is not None else section.start_s
        begin = section.start_s if begin is None else min(begin, section.start_s)
        finish = stop if finish is None else max(finish, stop)
    return begin, finish


def _marks(
    starts: list[int], ends: list[int], sections: list[Section], s: int, e: int
) -> tuple[tuple[int, float], ...]:
    """(offset within the chunk, start second) of every timed section overlapping [s, e)."""
    first = max(bisect.bisect_right(starts, s) - 1, 0)
    last = bisect.bisect_left(starts, e) - 1
    marks = []
    for i in range(first, last + 1):
        section = sections[i]
        if section.start_s is not None and ends[i] > s:
            marks.append((max(starts[i] - s, 0), float(section.start_s)))
    return tuple(marks)


def chunk_id(document_id: int | str, index: int, text: str) -> str:
    """A deterministic UUID string for (document, index, text); 1 and "1" name the same document."""
    # JSON keeps the parts apart: ("a:1", 2) and ("a", "1:2") must not collide.
    name = json.dumps([str(document_id), int(index), text], ensure_ascii=False)
    return str(uuid.uuid5(CHUNK_NAMESPACE, name))


def checksum(data: bytes | str) -> str:
    """sha256 hex of the content, normalised so trivially different copies match: text (and
    bytes that are UTF-8 text) is NFC with "\\n" newlines, no BOM, no trailing spaces on lines
    and no surrounding blank space; other bytes (PDF, cp1252) are hashed as they are."""
    if isinstance(data, bytes):
        text = _utf8_text(data)
        if text is None:
            return hashlib.sha256(data).hexdigest()
    else:
        text = data
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).lstrip(
        "\ufeff"
    )
    text = "\n".join(line.rstrip() for line in text.split("\n")).strip()
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _utf8_text(data: bytes) -> str | None:
    if b"\x00" in data or data.lstrip()[:5] == b"%PDF-":
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
