"""Bytes to clean text: encoding detection, line endings, control characters, NFC."""

from __future__ import annotations

import codecs
import re
import unicodedata

from .document import UNDECODABLE, UNSUPPORTED_TYPE, ParseError

# Line-ending-like characters become "\n"; every other control character (but tab) goes.
_CLEAN = {c: None for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if c not in (0x09, 0x0A)}
_CLEAN.update(
    {0x0B: "\n", 0x0C: "\n", 0x0D: "\n", 0x85: "\n", 0x2028: "\n", 0x2029: "\n", 0xFEFF: None}
)

SPACES = re.compile(r"\s+")


def decode(data: bytes) -> str:
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


def clean(text: str) -> str:
    text = text.replace("\r\n", "\n").translate(_CLEAN)
    return unicodedata.normalize("NFC", text)
