"""Which format a source is: from the content, the file extension only breaking ties."""

from __future__ import annotations

import codecs
import json

from .decoding import clean, decode
from .document import EMPTY, MALFORMED, UNDECODABLE, UNSUPPORTED_TYPE, ParseError
from .pdf import is_pdf
from .subtitles import HAS_CUE, STARTS_WITH_CUE
from .text import looks_like_markdown
from .youtube_json import looks_like_youtube

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


def detect(data: bytes, filename: str | None) -> tuple[str, str]:
    """The kind and, for text kinds, the decoded and cleaned text ("" for a PDF).

    Raises ParseError for empty files, binary non-PDF content, and names that promise a format
    the content is not (e.g. a PNG or plain text named .pdf).
    """
    if not data.strip():
        raise ParseError("file is empty", code=EMPTY)
    if is_pdf(data, named_pdf=_extension(filename) == "pdf"):
        return "pdf", ""
    _reject_binary(data, filename)
    text = clean(decode(data))
    return sniff_text(text, filename), text


def sniff_text(text: str, filename: str | None) -> str:
    """The kind of already decoded text: vtt, srt, youtube_json, markdown or text."""
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
            if looks_like_youtube(value) or (ext == "json" and value == []):
                return "youtube_json"
            if ext == "json":
                raise ParseError(
                    "JSON is not a YouTube transcript (a list of {text, start, duration})",
                    code=MALFORMED,
                )
    if STARTS_WITH_CUE.match(stripped):
        return "vtt" if ext == "vtt" else "srt"
    if ext in ("srt", "vtt"):
        if HAS_CUE.search(text):
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
    return "markdown" if looks_like_markdown(text) else "text"


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
