"""Chunking: sizes, natural boundaries, overlap, transcript times, PDF pages, ids and checksums."""

from __future__ import annotations

import hashlib
import random
import re
import uuid

import pytest

from wwhd.knowledge.chunking import TextPiece, checksum, chunk_id, chunk_sections
from wwhd.knowledge.parsers import Section, parse_text

WORDS = (
    "tea bicycle envelope promise morning notebook kettle friend money karate teacher "
    "letter drawer decision night stranger garden breath habit lesson bakery"
).split()


def prose(sentences: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 18))]
        out.append(" ".join(words).capitalize() + rng.choice(".!?"))
    return " ".join(out)


def assert_overlap_is_exact(chunks: list[TextPiece]) -> None:
    for previous, chunk in zip(chunks, chunks[1:]):
        n = chunk.overlap_chars
        if n:
            assert chunk.text[:n] == previous.text[-n:]
            # The repeated part starts at a word boundary of the previous chunk.
            assert previous.text[-n - 1].isspace()


def rebuild(chunks: list[TextPiece]) -> list[str]:
    return " ".join(c.text[c.overlap_chars :] for c in chunks).split()


def test_short_text_is_one_chunk() -> None:
    chunks = chunk_sections([Section("  Hello there.  ")])
    assert chunks == [TextPiece(0, "Hello there.", None, None, None, 0)]


def test_nothing_to_chunk() -> None:
    assert chunk_sections([]) == []
    assert chunk_sections([Section("   \n\n "), Section("")]) == []


def test_prose_is_cut_at_sentence_ends_with_word_aligned_overlap() -> None:
    text = prose(400)
    chunks = chunk_sections([Section(text)], max_chars=1500, overlap=200)
    assert len(chunks) > 10
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert 0 < len(chunk.text) <= 1500
        assert chunk.text == chunk.text.strip()
    for chunk in chunks[:-1]:
        assert len(chunk.text) >= 750
        assert chunk.text[-1] in ".!?"
    assert chunks[0].overlap_chars == 0
    assert all(0 < c.overlap_chars <= 200 for c in chunks[1:])
    # Most overlaps are close to the requested size, not token gestures.
    assert sum(c.overlap_chars for c in chunks[1:]) / (len(chunks) - 1) > 100
    assert_overlap_is_exact(chunks)
    assert rebuild(chunks) == text.split()


def test_paragraph_breaks_beat_sentence_ends() -> None:
    paragraphs = [prose(6, seed=n) for n in range(30)]
    assert all(200 < len(p) < 700 for p in paragraphs)
    chunks = chunk_sections([Section("\n\n".join(paragraphs))])
    for chunk in chunks[:-1]:
        assert any(chunk.text.endswith(p) for p in paragraphs), chunk.text[-80:]
    assert chunks[-1].text.endswith(paragraphs[-1])
    assert_overlap_is_exact(chunks)


def test_markdown_sections_are_preferred_boundaries() -> None:
    sections = [Section(f"## Part {n}\n\n" + prose(8, seed=n)[:590]) for n in range(3)]
    chunks = chunk_sections(sections)
    assert chunks[0].text == sections[0].text + "\n\n" + sections[1].text
    assert sections[2].text in chunks[1].text
    assert 0 < chunks[1].overlap_chars <= 200


def test_words_are_never_cut_without_punctuation() -> None:
    rng = random.Random(3)
    text = " ".join(rng.choice(WORDS) for _ in range(3000))
    chunks = chunk_sections([Section(text)], max_chars=500, overlap=80)
    for chunk in chunks:
        assert set(chunk.text.split()) <= set(WORDS)
        assert len(chunk.text) <= 500
    assert_overlap_is_exact(chunks)
    assert rebuild(chunks) == text.split()


def test_a_word_longer_than_the_limit_is_the_only_hard_cut() -> None:
    chunks = chunk_sections([Section("a " + "x" * 4000 + " b")], max_chars=1500, overlap=200)
    assert [c.text for c in chunks] == ["a", "x" * 1500, "x" * 1500, "x" * 1000 + " b"]
    assert all(c.overlap_chars == 0 for c in chunks)


def test_zero_overlap() -> None:
    text = prose(200)
    chunks = chunk_sections([Section(text)], max_chars=800, overlap=0)
    assert all(c.overlap_chars == 0 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == text.split()


@pytest.mark.parametrize(("max_chars", "overlap"), [(0, 0), (100, 100), (100, 150), (100, -1)])
def test_bad_parameters(max_chars: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_sections([Section("text")], max_chars=max_chars, overlap=overlap)


def cues(count: int) -> list[Section]:
    return [
        Section(f"Cue {n:03d} says something about tea.", start_s=2.0 * n, end_s=2.0 * n + 2)
        for n in range(count)
    ]


def test_transcript_chunks_carry_the_times_of_the_cues_they_contain() -> None:
    sections = cues(300)
    chunks = chunk_sections(sections)
    assert len(chunks) > 3
    for chunk in chunks:
        assert "[" not in chunk.text and "00:" not in chunk.text
        numbers = [int(n) for n in re.findall(r"Cue (\d{3})", chunk.text)]
        # Overlap may begin mid-cue; that cue's start is still the chunk's start.
        first = numbers[0] if chunk.text.startswith("Cue") else numbers[0] - 1
        assert chunk.start_s == sections[first].start_s
        assert chunk.text.endswith("about tea.")
        assert chunk.end_s == sections[numbers[-1]].end_s
    for previous, chunk in zip(chunks, chunks[1:]):
        assert previous.start_s < chunk.start_s <= previous.end_s
        assert chunk.overlap_chars > 0
    assert chunks[0].start_s == 0.0 and chunks[-1].end_s == 600.0
    assert_overlap_is_exact(chunks)


def test_minute_twelve_of_a_parsed_transcript_is_findable() -> None:
    lines = [
        f"[{n // 60:02d}:{n % 60:02d}] At second {n} Herman says thing {n}."
        for n in range(0, 1500, 5)
    ]
    doc = parse_text("\n".join(lines))
    chunks = chunk_sections(doc.sections)
    hits = [c for c in chunks if "thing 725." in c.text]
    assert hits
    for chunk in hits:
        assert chunk.start_s <= 725 < chunk.end_s
        assert "[" not in chunk.text
        seconds = [int(n) for n in re.findall(r"At second (\d+)", chunk.text)]
        first = seconds[0] if chunk.text.startswith("At second") else seconds[0] - 5
        assert chunk.start_s == first
        # The parser ends each line where the next begins.
        assert chunk.end_s == seconds[-1] + 5


def test_untimed_preamble_does_not_hide_transcript_times() -> None:
    sections = [Section("# Title")] + cues(3)
    [chunk] = chunk_sections(sections)
    assert chunk.text.startswith("# Title\n\nCue 000")
    assert (chunk.start_s, chunk.end_s) == (0.0, 6.0)


def test_pdf_chunks_never_span_pages() -> None:
    page_one = prose(60, seed=1)
    assert len(page_one) > 3000
    sections = [
        Section(page_one, page=1),
        Section("Page two is short.", page=2),
        Section("   ", page=3),
        Section(prose(5, seed=4), page=4),
    ]
    chunks = chunk_sections(sections)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    by_page = {s.page: s.text for s in sections}
    for chunk in chunks:
        assert chunk.text in by_page[chunk.page]
        assert chunk.start_s is None and chunk.end_s is None
    pages = [c.page for c in chunks]
    assert pages == sorted(pages) and 3 not in pages
    assert pages.count(1) >= 3
    page_two = [c for c in chunks if c.page == 2]
    assert page_two == [TextPiece(page_two[0].index, "Page two is short.", None, None, 2, 0)]
    assert [c for c in chunks if c.page == 4][0].overlap_chars == 0


def test_chunking_is_deterministic() -> None:
    sections = cues(120) + [Section(prose(50), page=None)]
    assert chunk_sections(sections) == chunk_sections(list(sections))


# --- ids and checksums ----------------------------------------------------------------------------


def test_chunk_id_is_a_stable_uuid5() -> None:
    first = chunk_id(42, 3, "some text")
    assert first == chunk_id(42, 3, "some text") == chunk_id("42", 3, "some text")
    assert uuid.UUID(first).version == 5
    others = {
        chunk_id(43, 3, "some text"),
        chunk_id(42, 4, "some text"),
        chunk_id(42, 3, "some text!"),
    }
    assert first not in others and len(others) == 3
    assert chunk_id("a:1", 2, "t") != chunk_id("a", 1, "2:t")


def test_chunk_id_is_fixed_across_releases() -> None:
    # Qdrant point ids must never change for the same input; pin one value.
    assert chunk_id(1, 0, "hello") == str(
        uuid.uuid5(
            uuid.uuid5(uuid.NAMESPACE_URL, "https://wwhd.invalid/chunk"), '["1", 0, "hello"]'
        )
    )


def test_checksum_ignores_trivial_differences() -> None:
    base = checksum("Café line one\nline two")
    assert len(base) == 64 and int(base, 16) >= 0
    assert checksum("Cafe\u0301 line one\r\nline two  \n\n") == base
    assert checksum("\ufeffCafé line one\rline two") == base
    assert checksum("Café line one\nline two".encode()) == base
    assert checksum(b"\xef\xbb\xbfCaf\xc3\xa9 line one\r\nline two\r\n") == base
    assert checksum("Café line one\nline two.") != base
    assert checksum("Café line one\n\nline two") != base


def test_checksum_of_binary_is_the_plain_sha256() -> None:
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\nwhatever"
    assert checksum(pdf) == hashlib.sha256(pdf).hexdigest()
    png = b"\x89PNG\r\n\x1a\n\x00\x00"
    assert checksum(png) == hashlib.sha256(png).hexdigest()


def test_a_heading_stays_with_the_text_below_it() -> None:
    before, after = prose(16, seed=5)[:1000].strip(), prose(16, seed=6)[:700].strip()
    chunks = chunk_sections([Section(before + "\n\n## Heading\n\n" + after)])
    assert chunks[0].text == before
    assert chunks[1].text.endswith("## Heading\n\n" + after)


def test_marks_locate_each_timed_line_inside_its_chunk():
    lines = [
        Section(
            f"Line {n} talks about topic{n} at some length here.",
            start_s=10.0 * n,
            end_s=10.0 * n + 10,
        )
        for n in range(60)
    ]
    chunks = chunk_sections(lines, max_chars=500, overlap=80)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.marks and chunk.marks[0][0] == 0
        for offset, second in chunk.marks:
            n = int(second // 10)
            if offset > 0:
                assert chunk.text[offset:].startswith(f"Line {n} ")
        assert [s for _, s in chunk.marks] == sorted(s for _, s in chunk.marks)
        assert chunk.start_s == chunk.marks[0][1]


def test_untimed_text_has_no_marks():
    chunks = chunk_sections([Section("Plain prose. " * 300)], max_chars=500, overlap=50)
    assert all(chunk.marks == () for chunk in chunks)
