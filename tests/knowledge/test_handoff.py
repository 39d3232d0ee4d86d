"""An upload's parse handed to its job (wwhd/knowledge/handoff.py): the job parses nothing and
indexes exactly what parsing the original gives, in-process and in child processes."""

from __future__ import annotations

import os
import tempfile

import pytest

from bench.ingestion import transcript
from tests.knowledge.test_prepare_child import snapshot
from tests.tests_support import add_upload
from wwhd.deps import get_runner
from wwhd.knowledge import handoff, prepare
from wwhd.knowledge.parsers import ParsedDocument, Section

# Fractional cue times: what a parse of the stored text ("[HH:MM:SS] ..." lines) would lose.
VTT = transcript(0.15, seed=4).replace(b".000 -->", b".250 -->")


@pytest.fixture(autouse=True)
def own_temp_dir(tmp_path, monkeypatch):
    """This test's own handoff folder: other tests and processes on the machine use theirs."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))


def upload(app, data: bytes = VTT, in_child: bool = False):
    return add_upload(app, data, in_child=in_child)


def handoff_files() -> list[str]:
    return sorted(os.listdir(handoff.folder()))


def count_parses(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = prepare.parse_bytes

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(prepare, "parse_bytes", counting)
    return calls


def test_job_uses_the_uploads_parse_and_indexes_the_same(app_factory, monkeypatch):
    handed, parsed = app_factory("handed", INGEST_IN_CHILD="never"), app_factory("parsed")
    first, _ = upload(handed)
    assert len(handoff_files()) == 1
    parses = count_parses(monkeypatch)
    assert get_runner(handed).run(first) == "indexed"
    assert parses == []  # the job read the upload's sections
    assert handoff_files() == []  # used once

    monkeypatch.setattr(handoff, "folder", lambda: None)  # no handoff: the job parses
    second, _ = upload(parsed)
    assert get_runner(parsed).run(second) == "indexed"
    assert parses == [1]
    assert first == second
    rows, points = snapshot(handed, first)
    assert len(rows) > 64 and rows[1][3] % 1 == 0.25  # the original's cue times, not the text's
    assert (rows, points) == snapshot(parsed, second)


def test_child_processes_hand_the_parse_on(app_factory):
    child, inline = app_factory("child", INGEST_IN_CHILD="always"), app_factory("inline")
    first, _ = upload(child, in_child=True)
    assert len(handoff_files()) == 1
    assert get_runner(child).run(first) == "indexed"
    assert handoff_files() == []
    second, _ = upload(inline)
    handoff.discard(handoff.folder() / handoff_files()[0])  # the inline job parses
    assert get_runner(inline).run(second) == "indexed"
    assert snapshot(child, first) == snapshot(inline, second)


@pytest.mark.parametrize("in_child", [False, True])
def test_a_duplicate_with_other_bytes_leaves_the_first_parse(app, in_child):
    """Same text (whole seconds), other fractions: a duplicate, whose parse is not kept."""
    first, created = upload(app)
    assert created
    other = VTT.replace(b".250 -->", b".750 -->")
    again, created = upload(app, other, in_child=in_child)
    assert (again, created) == (first, False)
    assert len(handoff_files()) == 1
    assert get_runner(app).run(first) == "indexed"
    rows, _ = snapshot(app, first)
    assert rows[1][3] % 1 == 0.25


def test_sections_for_another_text_or_filename_are_not_used(tmp_path):
    parsed = ParsedDocument("vtt", [Section("one", 1.5, 2.0), Section("two", 2.0, 3.25)])
    path = tmp_path / "sections.json"
    path.write_bytes(handoff.encode(parsed, "a" * 64, "talk.vtt"))
    assert handoff.load(path, "a" * 64, "talk.vtt") == parsed
    assert handoff.load(path, "b" * 64, "talk.vtt") is None
    assert handoff.load(path, "a" * 64, "talk.srt") is None
    assert handoff.load(tmp_path / "absent.json", "a" * 64, "talk.vtt") is None
    for damaged in (b"{", b"[]", b'{"checksum": "x"}'):
        path.write_bytes(damaged)
        assert handoff.load(path, "a" * 64, "talk.vtt") is None


def test_a_folder_others_can_write_is_not_used():
    place = handoff.folder()
    assert place is not None
    place.chmod(0o777)
    assert handoff.folder() is None
    place.chmod(0o700)
    assert handoff.folder() == place


def test_old_files_are_swept(app):
    place = handoff.folder()
    stale = place / "stale.json"
    stale.write_bytes(b"{}")
    old = stale.stat().st_mtime - handoff.MAX_AGE_S - 60
    os.utime(stale, (old, old))
    upload(app)
    assert "stale.json" not in handoff_files() and len(handoff_files()) == 1


def test_pdf_pages_round_trip_and_unwritable_text_is_not_handed_on(tmp_path):
    pages = ParsedDocument("pdf", [Section("one", page=1), Section("two", page=2)], "Title")
    path = tmp_path / "sections.json"
    path.write_bytes(handoff.encode(pages, "a" * 64, "doc.pdf"))
    assert handoff.load(path, "a" * 64, "doc.pdf") == pages
    lone_surrogate = ParsedDocument("text", [Section("broken \ud800 glyph")])
    assert handoff.encode(lone_surrogate, "a" * 64, "doc.txt") is None
    handoff.save(None, "b" * 64)  # nothing to keep: no file, no error
    assert handoff_files() == []
