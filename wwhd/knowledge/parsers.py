"""Source files (text, Markdown, SRT, VTT, YouTube JSON, PDF) turned into positioned sections."""

from __future__ import annotations

import codecs
import html
import io
import json
import logging
import math
import re
import unicodedata
from dataclasses import dataclass

from ..links import format_timestamp

log = logging.getLogger(__name__)

KINDS = ("text", "markdown", "srt", "vtt", "youtube_json", "pdf")

# ParseError codes; the API maps all of them to a 4xx with the message as the reason.
EMPTY = "EMPTY"  # zero bytes or only whitespace
UNSUPPORTED_TYPE = "UNSUPPORTED_TYPE"  # binary non-PDF content, or the name promises a PDF it isn't
UNDECODABLE = "UNDECODABLE"  # text in no encoding we can read cleanly
MALFORMED = "MALFORMED"  # .json/.srt/.vtt whose content is not that format
UNREADABLE_PDF = "UNREADABLE_PDF"  # damaged, truncated or page-less PDF
ENCRYPTED_PDF = "ENCRYPTED_PDF"  # needs a password we don't have
NO_TEXT = "NO_TEXT"  # parsed fine but nothing to index (scanned PDF, empty transcript)

# When a timed line is the last one we have no next start; a typical spoken line lasts seconds.
LAST_LINE_FALLBACK_S = 30.0


class ParseError(ValueError):
    """A source that cannot be turned into text; `code` is machine-readable, str() is for people."""

    def __init__(self, message: str, code: str = MALFORMED):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Section:
    """A run of text with its position in the source."""

    text: str
    start_s: float | None = None
    end_s: float | None = None
    page: int | None = None


@dataclass(frozen=True)
class ParsedDocument:
    kind: str
    sections: list[Section]
    title: str | None = None

    @property
    def text(self) -> str:
        """Full plain text; timed sections are rendered as "[HH:MM:SS] text" lines."""
        parts: list[str] = []
        previous_timed = False
        for section in self.sections:
            timed = section.start_s is not None
            if parts:
                parts.append("\n" if timed and previous_timed else "\n\n")
            if timed:
                parts.append(f"[{format_timestamp(section.start_s, hours=True)}] {section.text}")
            else:
                parts.append(section.text)
            previous_timed = timed
        return "".join(parts)


# --- detection -------------------------------------------------------------------------------

# Signatures of binary formats people upload by mistake, so the error can name what was sent.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"PK\x03\x04", "a ZIP archive (or a Word/Excel/EPUB file)"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office document"),
    (b"\x1a\x45\xdf\xa3", "a WebM/Matroska video"),
    (b"OggS", "an Ogg audio file"),
    (b"fLaC", "a FLAC audio file"),
    (b"ID3\x03", "an MP3 audio file"),
    (b"ID3\x04", "an MP3 audio file"),
    (b"\x7fELF", "a program (ELF binary)"),
    (b"SQLite format 3\x00", "an SQLite database"),
)

_TIME = r"(?:(\d{1,3}):)?(\d{1,3}):(\d{2})(?:[.,:](\d{1,3}))?"
_CUE_TIMING = re.compile(rf"^[ \t]*{_TIME}[ \t]*-->[ \t]*{_TIME}(?:[ \t]+.*)?$")
_SRT_START = re.compile(rf"^(?:\d+[ \t]*\n)?[ \t]*{_TIME}[ \t]*-->")
_HAS_CUE = re.compile(rf"^[ \t]*{_TIME}[ \t]*-->[ \t]*{_TIME}", re.MULTILINE)
_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
_MD_HINTS = re.compile(r"^ {0,3}(?:#{1,6}[ \t]+\S|```)|\]\(https?://", re.MULTILINE)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


def _binary_name(data: bytes) -> str | None:
    head = data[:64]
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[4:8] == b"ftyp":
        return "an MP4/MOV video or HEIC image"
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return {b"WEBP": "a WebP image", b"WAVE": "a WAV audio file", b"AVI ": "an AVI video"}[
            head[8:12]
        ]
    return None


def _is_pdf(data: bytes, filename: str | None = None) -> bool:
    if data.lstrip()[:5] == b"%PDF-":
        return True
    # Readers accept junk before the header within the first 1 KB; only trust that for a .pdf name,
    # so a text file that merely mentions "%PDF-" stays text.
    return _extension(filename) == "pdf" and b"%PDF-" in data[:1024]


def _extension(filename: str | None) -> str:
    if not filename or "." not in filename:
        return ""
    return filename.rsplit(".", 1)[-1].lower()


def _reject_binary(data: bytes, filename: str | None) -> None:
    name = _binary_name(data)
    unicode_bom = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE))
    if name is None and not unicode_bom and b"\x00" in data:
        sample = data[:4096]
        # UTF-16 without a byte-order mark puts a NUL beside every ASCII letter.
        if sample[1::2].count(0) > len(sample) // 4 or sample[0::2].count(0) > len(sample) // 4:
            raise ParseError(
                "file looks like UTF-16 text without a byte-order mark; save it as UTF-8",
                code=UNDECODABLE,
            )
        name = "a binary file"
    if name is None:
        return
    if _extension(filename) == "pdf":
        raise ParseError(
            f"file is named .pdf but looks like {name}, not a PDF", code=UNSUPPORTED_TYPE
        )
    raise ParseError(
        f"file looks like {name}, not text, a transcript or a PDF", code=UNSUPPORTED_TYPE
    )


def detect_kind(data: bytes, filename: str | None = None) -> str:
    """The source kind from the content, the file extension only breaking ties.

    Raises ParseError for empty files, binary non-PDF content, and names that promise a format
    the content is not (e.g. a PNG or plain text named .pdf).
    """
    return _detect(data, filename)[0]


def _detect(data: bytes, filename: str | None) -> tuple[str, str]:
    """The kind and, for text kinds, the decoded and cleaned text ("" for a PDF)."""
    if not data.strip():
        raise ParseError("file is empty", code=EMPTY)
    if _is_pdf(data, filename):
        return "pdf", ""
    _reject_binary(data, filename)
    text = _clean(_decode(data))
    return _sniff_text(text, filename), text


def _sniff_text(text: str, filename: str | None) -> str:
    ext = _extension(filename)
    stripped = text.lstrip()
    if not stripped:
        raise ParseError("file is empty", code=EMPTY)
    if ext == "pdf":
        raise ParseError("file is named .pdf but is plain text, not a PDF", code=UNSUPPORTED_TYPE)
    if stripped.startswith("WEBVTT"):
        return "vtt"
    if stripped[0] in "[{":
        try:
            value = json.loads(stripped)
        except (ValueError, RecursionError) as exc:
            if ext == "json":
                raise ParseError(f"file is not valid JSON ({exc})", code=MALFORMED) from exc
        else:
            if _looks_like_youtube(value) or (ext == "json" and value == []):
                return "youtube_json"
            if ext == "json":
                raise ParseError(
                    "JSON is not a YouTube transcript (a list of {text, start, duration})",
                    code=MALFORMED,
                )
    if _SRT_START.match(stripped):
        return "vtt" if ext == "vtt" else "srt"
    if ext in ("srt", "vtt"):
        if _HAS_CUE.search(text):
            return ext
        raise ParseError(
            f"file is named .{ext} but contains no subtitle cues (\"00:00:01,000 --> ...\")",
            code=MALFORMED,
        )
    if ext == "json":
        raise ParseError("file is named .json but is not JSON", code=MALFORMED)
    if ext in ("md", "markdown", "mdx"):
        return "markdown"
    if ext in ("txt", "text"):
        return "text"
    if _FRONT_MATTER.match(stripped) or _MD_HINTS.search(text, 0, 65536):
        return "markdown"
    return "text"


def _looks_like_youtube(value: object) -> bool:
    if isinstance(value, dict):
        return isinstance(value.get("events"), list)  # YouTube's own "json3" caption format
    if not isinstance(value, list) or not value:
        return False
    # The first entry decides; later bad entries get a precise error from the parser.
    first = value[0]
    return isinstance(first, dict) and "text" in first and "start" in first


# --- decoding and cleaning -------------------------------------------------------------------

# Line-ending-like characters become "\n"; every other control character (but tab) goes.
_CLEAN = {c: None for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if c not in (0x09, 0x0A)}
_CLEAN.update(
    {0x0B: "\n", 0x0C: "\n", 0x0D: "\n", 0x85: "\n", 0x2028: "\n", 0x2029: "\n", 0xFEFF: None}
)


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        encodings: tuple[str, ...] = ("utf-32",)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ("utf-16",)
    else:
        # latin-1 is not tried: it decodes anything, and where cp1252 fails it yields C1 controls.
        encodings = ("utf-8-sig", "cp1252")
    for encoding in encodings:
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ParseError(
            "file is not readable text (not UTF-8 or Windows-1252); save it as UTF-8",
            code=UNDECODABLE,
        )
    sample = text[:65536]
    controls = sum(1 for ch in sample if ch < " " and ch not in "\t\n\r\f\v")
    if controls > 4 and controls * 100 > len(sample):
        raise ParseError("file looks like binary data, not text", code=UNSUPPORTED_TYPE)
    return text


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").translate(_CLEAN)
    return unicodedata.normalize("NFC", text)


# --- parsing ---------------------------------------------------------------------------------


def parse_bytes(data: bytes, filename: str | None = None) -> ParsedDocument:
    """Parse an uploaded file; raises ParseError naming the problem."""
    kind, text = _detect(data, filename)
    if kind == "pdf":
        return _parse_pdf(data)
    return _parse_kind(kind, text)


def parse_text(text: str) -> ParsedDocument:
    """Parse pasted text: plain or Markdown with optional line timestamps; a pasted SRT, VTT or
    YouTube JSON transcript is recognised too. Raises ParseError when there is no text."""
    text = _clean(text)
    kind = _sniff_text(text, None)
    return _parse_kind(kind, text)


def _parse_kind(kind: str, text: str) -> ParsedDocument:
    if kind in ("srt", "vtt"):
        doc = ParsedDocument(kind, _parse_cues(text, vtt=kind == "vtt"))
    elif kind == "youtube_json":
        doc = ParsedDocument(kind, _parse_youtube(text))
    else:
        doc = _parse_plain(text, markdown=kind == "markdown")
    if not doc.sections:
        raise ParseError("file contains no text to index", code=NO_TEXT if text.strip() else EMPTY)
    return doc


# Line timestamps: "[00:01:02] text", "[01:02] text", "00:01:02 text", "1:02 - text", "(01:02) text".
_LINE_TS = re.compile(
    r"^[ \t]*(?:\[(?P<b>[\d:.,]+)\]|\((?P<p>[\d:.,]+)\)|(?P<n>\d{1,3}(?::\d{2}){1,2}(?:[.,]\d{1,3})?)(?=\s|$))"
    r"[ \t]*(?:[-–—:|][ \t]+)?(?P<text>.*)$"
)
_TS_VALUE = re.compile(r"^(?:(\d{1,3}):)?(\d{1,3}):(\d{2})(?:[.,](\d{1,3}))?$")


def _seconds(hours: str | None, minutes: str, seconds: str, fraction: str | None) -> float | None:
    m, s = int(minutes), int(seconds)
    if s >= 60 or (hours is not None and m >= 60):
        return None
    # Whole milliseconds, divided once, so "03.639" is 3.639 and not 3.6390000000000002.
    millis = (int(hours or 0) * 3600 + m * 60 + s) * 1000 + int((fraction or "0").ljust(3, "0"))
    return millis / 1000


def _line_time(line: str) -> tuple[float, str, bool] | None:
    """(seconds, rest of line, bracketed) when the line starts with a timestamp."""
    match = _LINE_TS.match(line)
    if not match:
        return None
    raw = match.group("b") or match.group("p") or match.group("n")
    value = _TS_VALUE.match(raw)
    if not value:
        return None
    seconds = _seconds(*value.groups())
    if seconds is None:
        return None
    return seconds, match.group("text").strip(), match.group("n") is None


def _parse_plain(text: str, markdown: bool) -> ParsedDocument:
    title = None
    front = _FRONT_MATTER.match(text.lstrip()) if markdown else None
    if front:
        text = text.lstrip()[front.end() :]
        for line in front.group(1).splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "title" and value.strip():
                title = value.strip().strip("\"'")
    if markdown and title is None:
        heading = _MD_HEADING.search(text)
        if heading:
            title = heading.group(2).strip()
        else:
            setext = re.search(r"^(\S.*)\n=+[ \t]*$", text, re.MULTILINE)
            title = setext.group(1).strip() if setext else None
    sections = _timed_lines(text)
    if sections is None:
        sections = _markdown_sections(text) if markdown else _untimed(text)
    return ParsedDocument("markdown" if markdown else "text", sections, title or None)


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
        elif not in_fence and offset and _MD_HEADING.match(line.rstrip("\n")):
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


_TAG = re.compile(r"<[^>\n]*>|\{\\[^}\n]*\}")
_VTT_BLOCK = re.compile(r"(?:NOTE|STYLE|REGION)(?:\s|$)")
_SPACES = re.compile(r"\s+")


def _cue_line(line: str) -> str:
    line = _TAG.sub("", line)
    if "&" in line:
        line = html.unescape(line)
    return _SPACES.sub(" ", line).strip()


def _cue_time(groups: tuple[str | None, ...]) -> float:
    seconds = _seconds(*groups)
    if seconds is None:
        raise ParseError("subtitle cue has an invalid timestamp", code=MALFORMED)
    return seconds


def _parse_cues(text: str, vtt: bool) -> list[Section]:
    """SRT or WebVTT cues, markup stripped, auto-caption roll-up repeats merged."""
    cues: list[tuple[float, float, list[str]]] = []
    pending: list[str] = []  # lines outside any cue: identifiers, headers or stray text
    current: list[str] | None = None
    skipping_block = False
    at_block_start = True
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
        timing = _CUE_TIMING.match(line)
        if timing:
            if current is not None and current and current[-1].strip().isdigit():
                current.pop()  # an SRT cue number with no blank line before it
            elif pending:
                pending.pop()  # the identifier line right before the timing
            if cues and pending:
                cues[-1][2].extend(pending)
            pending = []
            groups = timing.groups()
            start, end = _cue_time(groups[:4]), _cue_time(groups[4:])
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


def _number(value: object) -> float | None:
    """A finite, non-negative number from a JSON number or numeric string, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _parse_youtube(text: str) -> list[Section]:
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
        body = _SPACES.sub(" ", html.unescape(_clean(body))).strip()
        if not body:
            continue
        if duration is None:
            duration = max(items[n + 1][0] - start, 0.0) if n + 1 < len(items) else 0.0
        sections.append(Section(body, start_s=start, end_s=start + duration))
    return sections


# pypdf page text often has runs of spaces and trailing blanks that only add noise.
_PDF_SPACES = re.compile(r"[ \t]+")
_PDF_BLANKS = re.compile(r"\n{3,}")


def _parse_pdf(data: bytes) -> ParsedDocument:
    from pypdf import PdfReader  # ~0.15 s to import: only for PDFs (wwhd/lazy.py)

    # pypdf raises a wide range of exception types on damaged files; any of them means unreadable.
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                unlocked = reader.decrypt(
                    ""
                )  # owner-password-only PDFs open with an empty password
            except Exception:
                unlocked = 0
            if not unlocked:
                raise ParseError(
                    "PDF is password-protected; upload an unlocked copy", code=ENCRYPTED_PDF
                )
        pages = list(reader.pages)
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(
            "PDF could not be read; it may be damaged or truncated", code=UNREADABLE_PDF
        ) from exc
    if not pages:
        raise ParseError("PDF has no pages", code=UNREADABLE_PDF)

    sections: list[Section] = []
    failed = 0
    for number, page in enumerate(pages, start=1):
        try:
            raw = page.extract_text() or ""
        except Exception:
            log.warning("pdf page %d: text extraction failed", number, exc_info=True)
            failed += 1
            continue
        lines = (_PDF_SPACES.sub(" ", line).strip() for line in _clean(raw).split("\n"))
        body = _PDF_BLANKS.sub("\n\n", "\n".join(lines)).strip()
        if body:
            sections.append(Section(body, page=number))
    if not sections:
        if failed == len(pages):
            raise ParseError("PDF could not be read; it may be damaged", code=UNREADABLE_PDF)
        raise ParseError(
            "PDF has no extractable text (it may be scanned images; run OCR first)", code=NO_TEXT
        )

    title = None
    try:
        meta = reader.metadata
        if meta is not None and isinstance(meta.title, str):
            title = _SPACES.sub(" ", _clean(meta.title)).strip() or None
    except Exception:
        title = None
    return ParsedDocument("pdf", sections, title)
