"""Parsers: kind detection, decoding, timestamps, SRT/VTT/YouTube JSON, PDF pages and errors."""

from __future__ import annotations

import io
import json

import pytest

from wwhd.knowledge.parsers import (
    ParsedDocument,
    ParseError,
    Section,
    detect_kind,
    parse_bytes,
    parse_text,
)
from wwhd.links import format_timestamp

PNG_HEADER = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
)


def _pdf_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A minimal valid PDF: one Helvetica text object per page, one line per "\\n"."""
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] /Count {len(pages)} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    }
    for page_id, text in zip(page_ids, pages):
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>"
        ).encode()
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        ops += [f"({_pdf_string(line)}) Tj T*" for line in text.split("\n")] if text else []
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects[page_id + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    info_id = None
    if title is not None:
        info_id = max(objects) + 1
        objects[info_id] = f"<< /Title ({_pdf_string(title)}) >>".encode("latin-1")

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    info = b" /Info %d 0 R" % info_id if info_id else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (size, info, xref)
    return bytes(out)


def encrypt_pdf(data: bytes, user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    # RC4 works without the optional cryptography package, like production.
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def error_of(data: bytes, filename: str | None = None) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse_bytes(data, filename)
    return caught.value


# --- detection ---------------------------------------------------------------------------------

SRT = """1
00:00:01,000 --> 00:00:04,000
<i>Hello</i> and welcome.

2
00:00:04,500 --> 00:00:07,250
{\\an8}Today we talk
about money.

3
00:12:03,000 --> 00:12:06,000
Save first, spend later.
"""

VTT = """WEBVTT
Kind: captions
Language: en

NOTE this is a comment
with two lines

STYLE
::cue { color: yellow }

intro
00:00.000 --> 00:03.500 align:start position:10%
<v Herman>Good evening, everybody.</v>

00:03.500 --> 00:07.000
Sit <b>down</b> &amp; get comfortable.

1:02:03.000 --> 1:02:05.000
The end.
"""

YOUTUBE = [
    {"text": "hello there", "start": 0.0, "duration": 2.5},
    {"text": "we&#39;re talking\nabout tea", "start": 2.5, "duration": 3.0},
    {"text": "", "start": 5.5, "duration": 1.0},
    {"text": "at minute twelve", "start": 723.4, "duration": 4.1},
]


@pytest.mark.parametrize(
    ("data", "filename", "kind"),
    [
        (make_pdf(["x"]), "a.pdf", "pdf"),
        (make_pdf(["x"]), "renamed.txt", "pdf"),
        (make_pdf(["x"]), None, "pdf"),
        (VTT.encode(), "talk.vtt", "vtt"),
        (VTT.encode(), "talk.txt", "vtt"),
        (VTT.encode(), None, "vtt"),
        (SRT.encode(), "talk.srt", "srt"),
        (SRT.encode(), "talk.txt", "srt"),
        (SRT.encode(), None, "srt"),
        (json.dumps(YOUTUBE).encode(), "t.json", "youtube_json"),
        (json.dumps(YOUTUBE).encode(), "t.txt", "youtube_json"),
        (json.dumps(YOUTUBE).encode(), None, "youtube_json"),
        (b"# Title\n\nBody text.", "notes.md", "markdown"),
        (b"# Title\n\nBody text.", None, "markdown"),
        (b"Just words.\nMore words.", None, "text"),
        (b"Just words.", "a.md", "markdown"),
        (b"# Heading in a txt\nwords", "a.txt", "text"),
        (b"[00:00:04] Hello\n[00:00:09] World", "t.txt", "text"),
        (b"[1, 2, 3] is a list, not a transcript", None, "text"),
    ],
)
def test_detect_kind_uses_content_first(data: bytes, filename: str | None, kind: str) -> None:
    assert detect_kind(data, filename) == kind


@pytest.mark.parametrize(
    ("data", "filename", "needle"),
    [
        (PNG_HEADER, "slides.pdf", "PNG"),
        (PNG_HEADER, "photo.png", "PNG"),
        (PNG_HEADER, None, "PNG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "scan.pdf", "JPEG"),
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 20, "doc.docx", "ZIP"),
        (b"some text\x00\x01\x02 with NUL bytes", "a.txt", "binary"),
    ],
)
def test_binary_content_is_rejected_naming_the_type(
    data: bytes, filename: str | None, needle: str
) -> None:
    error = error_of(data, filename)
    assert error.code == "UNSUPPORTED_TYPE"
    assert needle in str(error)
    with pytest.raises(ParseError):
        detect_kind(data, filename)


def test_png_renamed_pdf_says_so() -> None:
    error = error_of(PNG_HEADER, "notes.pdf")
    assert isinstance(error, ValueError)
    assert "PNG image" in str(error) and "not a PDF" in str(error) and ".pdf" in str(error)


def test_text_named_pdf_is_a_mismatch() -> None:
    error = error_of(b"hello, I am text", "report.pdf")
    assert error.code == "UNSUPPORTED_TYPE"
    assert "not a PDF" in str(error)


@pytest.mark.parametrize("data", [b"", b"   \n\r\n\t ", b"\xef\xbb\xbf", b"\xef\xbb\xbf \n"])
def test_empty_files_are_rejected(data: bytes) -> None:
    assert error_of(data, "a.txt").code == "EMPTY"
    with pytest.raises(ParseError) as caught:
        parse_text(data.decode("utf-8-sig"))
    assert caught.value.code == "EMPTY"


@pytest.mark.parametrize(
    ("data", "filename", "needle"),
    [
        (b"this is not json", "t.json", "JSON"),
        (b"[{\"text\": \"a\", \"start\": 1}", "t.json", "JSON"),
        (b'{"foo": 1}', "t.json", "YouTube"),
        (b"Just a paragraph of prose.", "talk.srt", "cues"),
        (b"WEBVTT\n\nno cues here", "talk.vtt", "cues"),
        (b'[{"text": "a", "start": "soon"}]', "t.json", "start"),
        (b'[{"text": "a", "start": 1}, "oops"]', "t.json", "entry 2"),
    ],
)
def test_malformed_structured_files(data: bytes, filename: str, needle: str) -> None:
    error = error_of(data, filename)
    assert error.code == "MALFORMED"
    assert needle in str(error)


# --- decoding -----------------------------------------------------------------------------------


def test_utf8_bom_and_crlf_and_control_characters() -> None:
    doc = parse_bytes(
        "\ufeffCafé line one\r\nline\x07 two\rline three\x0c".encode("utf-8"), "a.txt"
    )
    assert doc.text == "Café line one\nline two\nline three"


def test_cp1252_fallback() -> None:
    doc = parse_bytes("Caf\xe9 \u201cquoted\u201d \u2013 done".encode("cp1252"), "a.txt")
    assert doc.text == "Café “quoted” – done"


def test_utf16_with_bom() -> None:
    doc = parse_bytes("Grüße aus Delft".encode("utf-16"), "a.txt")
    assert doc.text == "Grüße aus Delft"


def test_undecodable_bytes() -> None:
    # 0x81 and 0x8D are undefined in cp1252 and invalid UTF-8.
    error = error_of(b"abc \x81\x8d def", "a.txt")
    assert error.code == "UNDECODABLE"


def test_decomposed_unicode_is_normalised_to_nfc() -> None:
    assert parse_text("Cafe\u0301").text == "Caf\u00e9"


# --- timestamps in text and Markdown -----------------------------------------------------------


def test_line_timestamps_in_all_styles() -> None:
    doc = parse_text(
        "Intro line without time\n"
        "[00:00:04] Good evening.\n"
        "continued on the next line\n"
        "[01:10] Bracketed minutes.\n"
        "00:02:00 Bare hours.\n"
        "12:30 - Bare minutes with dash.\n"
        "1:02:03 After an hour.\n"
    )
    assert doc.kind == "text"
    assert [s.text for s in doc.sections] == [
        "Intro line without time",
        "Good evening.\ncontinued on the next line",
        "Bracketed minutes.",
        "Bare hours.",
        "Bare minutes with dash.",
        "After an hour.",
    ]
    assert [s.start_s for s in doc.sections] == [None, 4.0, 70.0, 120.0, 750.0, 3723.0]
    assert [s.end_s for s in doc.sections[1:-1]] == [70.0, 120.0, 750.0, 3723.0]
    last = doc.sections[-1]
    assert last.end_s is not None and last.start_s < last.end_s <= last.start_s + 30


def test_stamp_alone_on_its_line_takes_the_text_below() -> None:
    doc = parse_text("0:00\nWelcome to the talk.\n0:07\nToday: tea.\n")
    assert [(s.start_s, s.end_s, s.text) for s in doc.sections] == [
        (0.0, 7.0, "Welcome to the talk."),
        (7.0, 14.0, "Today: tea."),
    ]


def test_rendered_text_uses_hh_mm_ss_and_round_trips() -> None:
    doc = parse_text("[00:04] Hello there.\n[01:02:03] Much later.")
    assert doc.text == "[00:00:04] Hello there.\n[01:02:03] Much later."
    again = parse_text(doc.text)
    assert [(s.text, s.start_s) for s in again.sections] == [
        (s.text, s.start_s) for s in doc.sections
    ]


def test_prose_with_a_time_of_day_is_not_a_transcript() -> None:
    doc = parse_text("10:30 we met at the café.\nIt was raining.\nWe talked about money.")
    assert len(doc.sections) == 1 and doc.sections[0].start_s is None
    verses = parse_text("3:16 For God so loved.\n1:10 Another verse.\n2:05 And another.")
    assert all(s.start_s is None for s in verses.sections)


def test_markdown_title_sections_and_timestamps() -> None:
    md = "# Five Things\n[00:00:04] Good evening, everybody.\n[00:00:41] A little background.\n"
    doc = parse_bytes(md.encode(), "talk.md")
    assert doc.kind == "markdown" and doc.title == "Five Things"
    assert [(s.text, s.start_s, s.end_s) for s in doc.sections] == [
        ("# Five Things", None, None),
        ("Good evening, everybody.", 4.0, 41.0),
        ("A little background.", 41.0, 71.0),
    ]
    assert doc.text.startswith("# Five Things\n\n[00:00:04] Good evening, everybody.\n[00:00:41] ")


def test_markdown_splits_at_headings_outside_code() -> None:
    md = (
        "---\ntitle: \"From front matter\"\nauthor: H\n---\n"
        "# Heading one\n\nPara one.\n\n```\n# not a heading\n```\n\n## Heading two\nPara two.\n"
    )
    doc = parse_text(md)
    assert doc.kind == "markdown" and doc.title == "From front matter"
    assert [s.text for s in doc.sections] == [
        "# Heading one\n\nPara one.\n\n```\n# not a heading\n```",
        "## Heading two\nPara two.",
    ]
    assert "author" not in doc.text


# --- SRT / VTT / YouTube JSON --------------------------------------------------------------------


def test_srt_cues() -> None:
    doc = parse_bytes(SRT.encode(), "talk.srt")
    assert doc.kind == "srt"
    assert doc.sections == [
        Section("Hello and welcome.", 1.0, 4.0),
        Section("Today we talk about money.", 4.5, 7.25),
        Section("Save first, spend later.", 723.0, 726.0),
    ]
    assert doc.text.splitlines()[2] == "[00:12:03] Save first, spend later."


def test_srt_without_blank_lines_between_cues() -> None:
    srt = "1\n00:00:01,000 --> 00:00:02,000\nOne.\n2\n00:00:02,000 --> 00:00:03,000\nTwo.\n"
    doc = parse_bytes(srt.encode(), "a.srt")
    assert [s.text for s in doc.sections] == ["One.", "Two."]


def test_vtt_header_notes_styles_settings_and_tags_are_dropped() -> None:
    doc = parse_bytes(VTT.encode(), "talk.vtt")
    assert doc.kind == "vtt"
    assert doc.sections == [
        Section("Good evening, everybody.", 0.0, 3.5),
        Section("Sit down & get comfortable.", 3.5, 7.0),
        Section("The end.", 3723.0, 3725.0),
    ]
    for junk in ("WEBVTT", "Kind", "NOTE", "comment", "::cue", "intro", "align", "<"):
        assert junk not in doc.text


def test_vtt_youtube_auto_caption_rollup_is_merged() -> None:
    vtt = (
        "WEBVTT\nKind: captions\nLanguage: en\n\n"
        "00:00:00.000 --> 00:00:03.629 align:start position:0%\n \n"
        "so<00:00:00.179><c> today</c><00:00:00.539><c> we</c>\n\n"
        "00:00:03.629 --> 00:00:03.639 align:start position:0%\nso today we\n \n\n"
        "00:00:03.639 --> 00:00:06.269 align:start position:0%\nso today we\n"
        "are<00:00:03.840><c> going</c><00:00:04.000><c> to</c>\n\n"
        "00:00:06.269 --> 00:00:06.279 align:start position:0%\nare going to\n \n\n"
        "00:00:06.279 --> 00:00:09.000 align:start position:0%\nare going to\ntalk about tea\n"
    )
    doc = parse_bytes(vtt.encode(), "auto.vtt")
    assert [(s.text, s.start_s, s.end_s) for s in doc.sections] == [
        ("so today we", 0.0, 3.639),
        ("are going to", 3.639, 6.279),
        ("talk about tea", 6.279, 9.0),
    ]


def test_youtube_json() -> None:
    doc = parse_bytes(json.dumps(YOUTUBE).encode(), "transcript.json")
    assert doc.kind == "youtube_json"
    assert doc.sections == [
        Section("hello there", 0.0, 2.5),
        Section("we're talking about tea", 2.5, 5.5),
        Section("at minute twelve", 723.4, 727.5),
    ]
    assert "[00:12:03] at minute twelve" in doc.text


def test_youtube_json_without_duration_uses_next_start() -> None:
    doc = parse_text(json.dumps([{"text": "a", "start": "1.5"}, {"text": "b", "start": 4}]))
    assert [(s.start_s, s.end_s) for s in doc.sections] == [(1.5, 4.0), (4.0, 4.0)]


def test_empty_youtube_transcript_has_no_text() -> None:
    assert error_of(b"[]", "t.json").code == "NO_TEXT"
    assert error_of(json.dumps([{"text": " ", "start": 0}]).encode(), "t.json").code == "NO_TEXT"


# --- PDF -------------------------------------------------------------------------------------------


def test_pdf_sections_per_page_with_title() -> None:
    data = make_pdf(["First page (intro)\nsecond line", "", "Third page text"], title="A Talk")
    doc = parse_bytes(data, "talk.pdf")
    assert doc.kind == "pdf" and doc.title == "A Talk"
    assert [s.page for s in doc.sections] == [1, 3]
    assert "First page (intro)" in doc.sections[0].text and "second line" in doc.sections[0].text
    assert doc.sections[1].text == "Third page text"
    assert all(s.start_s is None for s in doc.sections)
    assert "Third page text" in doc.text and "First page" in doc.text


def test_pdf_with_only_blank_pages_has_no_text() -> None:
    error = error_of(make_pdf(["", ""]), "scan.pdf")
    assert error.code == "NO_TEXT"
    assert "text" in str(error)


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n",
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\n",
        make_pdf(["Some text"])[:60],
    ],
)
def test_damaged_pdf_is_unreadable(data: bytes) -> None:
    error = error_of(data, "broken.pdf")
    assert error.code == "UNREADABLE_PDF"


def test_password_protected_pdf() -> None:
    error = error_of(encrypt_pdf(make_pdf(["Secret words"]), "letmein"), "locked.pdf")
    assert error.code == "ENCRYPTED_PDF"
    assert "password" in str(error)


def test_pdf_with_owner_password_only_still_parses() -> None:
    doc = parse_bytes(encrypt_pdf(make_pdf(["Open words"]), ""), "restricted.pdf")
    assert [s.text for s in doc.sections] == ["Open words"]


# --- small things ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, ""),
        (0, "00:00"),
        (4.9, "00:04"),
        (59, "00:59"),
        (61, "01:01"),
        (3599, "59:59"),
        (3600, "01:00:00"),
        (3723.5, "01:02:03"),
        (36000, "10:00:00"),
        (-3, "00:00"),
    ],
)
def test_format_timestamp(seconds: float | None, expected: str) -> None:
    assert format_timestamp(seconds) == expected


def test_format_timestamp_forced_hours() -> None:
    assert format_timestamp(75, hours=True) == "00:01:15"


def test_parse_error_carries_code_and_sentence() -> None:
    error = ParseError("file is empty", code="EMPTY")
    assert isinstance(error, ValueError) and error.code == "EMPTY" and str(error) == "file is empty"


def test_parsed_document_text_joins_untimed_sections_with_blank_lines() -> None:
    doc = ParsedDocument("pdf", [Section("one", page=1), Section("two", page=2)])
    assert doc.text == "one\n\ntwo"


def test_youtube_json3_events() -> None:
    json3 = {
        "events": [
            {"tStartMs": 0, "dDurationMs": 1000, "id": 1},
            {
                "tStartMs": 1500,
                "dDurationMs": 2000,
                "segs": [{"utf8": "hello "}, {"utf8": "there"}, {"x": 1}],
            },
            {"tStartMs": 4000, "segs": [{"utf8": 5}, {"utf8": "\n"}]},
            {"tStartMs": 720000, "dDurationMs": 3000, "segs": [{"utf8": "minute twelve"}]},
        ]
    }
    doc = parse_bytes(json.dumps(json3).encode(), "captions.json3")
    assert doc.kind == "youtube_json"
    assert doc.sections == [
        Section("hello there", 1.5, 3.5),
        Section("minute twelve", 720.0, 723.0),
    ]


@pytest.mark.parametrize(
    "entry",
    [
        {"text": "a", "start": "NaN"},
        {"text": "a", "start": -4},
        {"text": 7, "start": 1},
        {"text": "a"},
    ],
)
def test_youtube_json_bad_entries(entry: dict) -> None:
    data = json.dumps([{"text": "ok", "start": 0}, entry]).encode()
    error = error_of(data, "t.json")
    assert error.code == "MALFORMED" and "entry 2" in str(error)


def test_deeply_nested_json_is_malformed_not_a_crash() -> None:
    assert error_of(b"[" * 100_000, "t.json").code == "MALFORMED"


def test_short_fractions_are_fractions_of_a_second() -> None:
    doc = parse_bytes(b"1\n00:00:01,5 --> 00:00:02,25\nHalf.\n", "a.srt")
    assert (doc.sections[0].start_s, doc.sections[0].end_s) == (1.5, 2.25)
    assert parse_text("[00:00:07.5] a\n[00:00:09.75] b").sections[0].start_s == 7.5
