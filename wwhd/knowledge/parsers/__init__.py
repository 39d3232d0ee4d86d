"""Source files (text, Markdown, SRT, VTT, YouTube JSON, PDF) turned into positioned sections.

One module per format (`text`, `subtitles` for SRT and WebVTT, `youtube_json`, `pdf`), `detect` to
choose among them, and this module as the one entry point: callers use `parse_bytes` for uploads,
`parse_text` for pasted text, and the names re-exported below.
"""

from __future__ import annotations

from .decoding import clean
from .detect import detect, sniff_text
from .document import (
    EMPTY,
    ENCRYPTED_PDF,
    KINDS,
    MALFORMED,
    NO_TEXT,
    UNDECODABLE,
    UNREADABLE_PDF,
    UNSUPPORTED_TYPE,
    ParsedDocument,
    ParseError,
    Section,
)
from .pdf import parse_pdf
from .subtitles import parse_srt, parse_vtt
from .text import LAST_LINE_FALLBACK_S, parse_plain
from .youtube_json import parse_youtube_json

__all__ = [
    "EMPTY",
    "ENCRYPTED_PDF",
    "KINDS",
    "LAST_LINE_FALLBACK_S",
    "MALFORMED",
    "NO_TEXT",
    "UNDECODABLE",
    "UNREADABLE_PDF",
    "UNSUPPORTED_TYPE",
    "ParseError",
    "ParsedDocument",
    "Section",
    "detect_kind",
    "parse_bytes",
    "parse_text",
]


def detect_kind(data: bytes, filename: str | None = None) -> str:
    """The source kind from the content, the file extension only breaking ties.

    Raises ParseError for empty files, binary non-PDF content, and names that promise a format
    the content is not (e.g. a PNG or plain text named .pdf).
    """
    return detect(data, filename)[0]


def parse_bytes(data: bytes, filename: str | None = None) -> ParsedDocument:
    """Parse an uploaded file; raises ParseError naming the problem."""
    kind, text = detect(data, filename)
    if kind == "pdf":
        return parse_pdf(data)
    return _parse_kind(kind, text)


def parse_text(text: str) -> ParsedDocument:
    """Parse pasted text: plain or Markdown with optional line timestamps; a pasted SRT, VTT or
    YouTube JSON transcript is recognised too. Raises ParseError when there is no text."""
    text = clean(text)
    return _parse_kind(sniff_text(text, None), text)


def _parse_kind(kind: str, text: str) -> ParsedDocument:
    if kind == "srt":
        doc = ParsedDocument(kind, parse_srt(text))
    elif kind == "vtt":
        doc = ParsedDocument(kind, parse_vtt(text))
    elif kind == "youtube_json":
        doc = ParsedDocument(kind, parse_youtube_json(text))
    else:
        doc = parse_plain(text, markdown=kind == "markdown")
    if not doc.sections:
        raise ParseError("file contains no text to index", code=NO_TEXT if text.strip() else EMPTY)
    return doc
