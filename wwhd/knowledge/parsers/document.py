"""What every parser returns (sections with positions) and the one error they raise."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from ...links import format_timestamp

KINDS = ("text", "markdown", "srt", "vtt", "youtube_json", "pdf")

# ParseError codes; the API maps all of them to a 4xx with the message as the reason.
EMPTY = "EMPTY"  # zero bytes or only whitespace
UNSUPPORTED_TYPE = "UNSUPPORTED_TYPE"  # binary non-PDF content, or the name promises a PDF it isn't
UNDECODABLE = "UNDECODABLE"  # text in no encoding we can read cleanly
MALFORMED = "MALFORMED"  # .json/.srt/.vtt whose content is not that format
UNREADABLE_PDF = "UNREADABLE_PDF"  # damaged, truncated or page-less PDF
ENCRYPTED_PDF = "ENCRYPTED_PDF"  # needs a password we don't have
NO_TEXT = "NO_TEXT"  # parsed fine but nothing to index (scanned PDF, empty transcript)


class ParseError(ValueError):
    """A source that cannot be turned into text; `code` is machine-readable, str() is for people."""

    def __init__(self, message: str, code: str = MALFORMED):
        super().__init__(message)
        self.message = message
        self.code = code


class Section(NamedTuple):
    """A run of text with its position in the source. A named tuple, not a frozen dataclass: a
    5 MB transcript has ~53,000 sections, and a frozen dataclass's __init__ (object.__setattr__
    per field) cost ~2 µs each, ~0.1 s per parse; a tuple is built in C."""

    text: str
    start_s: float | None = None
    end_s: float | None = None
    page: int | None = None


@dataclass(frozen=True)
class ParsedDocument:
    kind: str
    sections: list[Section]
    title: str | None = None

    @cached_property  # read three times per upload (checksum, content, the job's check): ~0.2 s at 10 MB
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
