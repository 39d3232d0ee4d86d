"""PDF: one section per page with text, via pypdf; damaged, encrypted and scanned files named."""

from __future__ import annotations

import io
import logging
import re

from .decoding import SPACES, clean
from .document import (
    ENCRYPTED_PDF,
    NO_TEXT,
    UNREADABLE_PDF,
    ParsedDocument,
    ParseError,
    Section,
)

log = logging.getLogger(__name__)

# pypdf page text often has runs of spaces and trailing blanks that only add noise.
_PDF_SPACES = re.compile(r"[ \t]+")
_PDF_BLANKS = re.compile(r"\n{3,}")


def is_pdf(data: bytes, named_pdf: bool) -> bool:
    if data.lstrip()[:5] == b"%PDF-":
        return True
    # Readers accept junk before the header within the first 1 KB; only trust that for a .pdf name,
    # so a text file that merely mentions "%PDF-" stays text.
    return named_pdf and b"%PDF-" in data[:1024]


def parse_pdf(data: bytes) -> ParsedDocument:
    from pypdf import PdfReader  # ~0.15 s to import: only for PDFs (wwhd/lazy.py)

    # pypdf raises a wide range of exception types on damaged files; any of them means unreadable.
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                # Owner-password-only PDFs open with an empty password.
                unlocked = reader.decrypt("")
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
        lines = (_PDF_SPACES.sub(" ", line).strip() for line in clean(raw).split("\n"))
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
            title = SPACES.sub(" ", clean(meta.title)).strip() or None
    except Exception:
        title = None
    return ParsedDocument("pdf", sections, title)
