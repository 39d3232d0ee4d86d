"""One document end to end, and the `ingest` command's summary and exit status."""

from __future__ import annotations

import pytest

from wwhd.deps import get_deps
from wwhd.extensions import db
from wwhd.knowledge import reconcile
from wwhd.knowledge.files import get_file_store
from wwhd.knowledge.ingest import (
    FileTooLarge,
    IngestError,
    add_source,
    index_document,
    original_key,
    parsed_for,
)
from wwhd.knowledge.parsers import ParseError
from wwhd.models import Chunk, Document

SRT = b"1\n00:12:01,000 --> 00:12:04,500\nKeep your knees soft.\n\n2\n00:12:04,500 --> 00:12:09,000\nLet the hips turn first.\n"


def test_add_source_dedupes_by_content(app):
    with app.app_context():
        first = add_source(
            "general", data=b"Sweep the floor first.\n", filename="a.txt", store=get_file_store(app)
        )
        db.session.commit()
        assert first.created and first.document.status == "pending" and first.document.title == "a"
        again = add_source("money", data=b"Sweep the floor first.\r\n\r\n", filename="b.md")
        assert not again.created and again.document.id == first.document.id
        assert db.session.query(Document).count() == 1
        with pytest.raises(FileTooLarge, match="limit is 1 MB"):
            add_source(
                "general", data=b"x" * (1024 * 1024 + 1), filename="big.txt", max_bytes=1024 * 1024
            )
        with pytest.raises(IngestError, match="Unknown namespace 'nope'"):
            add_source("nope", text="hello")
        with pytest.raises(ParseError):
            add_source("general", data=b"", filename="empty.txt")


def test_original_key_is_safe():
    assert (
        original_key("ab" * 32, "../../My Talk (v2).vtt")
        == f"originals/ab/{'ab' * 32}/My_Talk_v2_.vtt"
    )
    assert original_key("cd" * 32, None).endswith("/upload")


def test_transcript_keeps_exact_times_from_the_original(app):
    with app.app_context():
        doc = add_source(
            "exercise_martial_arts", data=SRT, filename="drill.srt", store=get_file_store(app)
        ).document
        db.session.commit()
        parsed = parsed_for(doc, get_file_store(app))
        assert parsed.kind == "srt"
        index_document(doc, get_deps().index, parsed)
        chunk = db.session.query(Chunk).filter_by(document_id=doc.id).one()
        assert (chunk.start_s, chunk.end_s) == (721.0, 729.0)
        # Edited content no longer matches the original: the content is what gets indexed.
        doc.content = "[00:12:01] Keep your knees soft and loose."
        doc.checksum = "edited"
        assert parsed_for(doc, get_file_store(app)).kind == "text"


def test_edit_replaces_points_without_gaps_or_leftovers(app):
    with app.app_context():
        index = get_deps().index
        doc = add_source(
            "general",
            text="\n\n".join(f"Part {n}. " + "Slow is smooth. " * 60 for n in range(6)),
            title="Smooth",
        ).document
        db.session.commit()
        assert index_document(doc, index) > 1
        old = index.document_point_ids(doc.id)
        doc.content = "Just one short paragraph now."
        assert index_document(doc, index) == 1
        new = index.document_point_ids(doc.id)
        assert len(new) == 1 and not (old & new)
        assert {r.id for r in db.session.query(Chunk).filter_by(document_id=doc.id)} == new
        assert reconcile.report(index).total == 0


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_ingest_command_summary_and_exit_status(app, runner, tmp_path):
    folder = tmp_path / "kb"
    write(folder / "one.md", b"# Rice\n\nWash the rice three times.\n")
    write(folder / "sub" / "two.srt", SRT)
    write(folder / "copy.txt", b"# Rice\n\nWash the rice three times.\n")
    write(folder / "broken.pdf", b"\x89PNG\r\n\x1a\n....")
    write(folder / "notes.docx", b"ignored: not an ingestible suffix")
    result = runner.invoke(args=["wwhd", "ingest", str(folder), "--namespace", "diet_food"])
    assert result.exit_code == 1, result.output
    assert "2 indexed, 1 duplicate, 1 failed." in result.output
    assert (
        "Could not read 'broken.pdf': file is named .pdf but looks like a PNG image"
        in result.output
    )
    with app.app_context():
        assert {d.status for d in db.session.query(Document)} == {"indexed"}

    single = write(
        tmp_path / "talk.vtt", b"WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nStand like a tree.\n"
    )
    result = runner.invoke(
        args=[
            "wwhd",
            "ingest",
            str(single),
            "--namespace",
            "exercise_martial_arts",
            "--youtube-url",
            "https://youtu.be/abcDEF12345",
            "--title",
            "Tree",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "1 indexed, 0 duplicate, 0 failed." in result.output
    with app.app_context():
        doc = db.session.query(Document).filter_by(title="Tree").one()
        assert doc.youtube_url == "https://youtu.be/abcDEF12345" and doc.status == "indexed"

    assert (
        runner.invoke(
            args=["wwhd", "ingest", str(folder), "--namespace", "diet_food", "--title", "X"]
        ).exit_code
        == 1
    )
    assert runner.invoke(args=["wwhd", "ingest", str(single), "--namespace", "nope"]).exit_code == 1
    assert (
        runner.invoke(
            args=[
                "wwhd",
                "ingest",
                str(single),
                "--namespace",
                "general",
                "--youtube-url",
                "https://example.com",
            ]
        ).exit_code
        == 1
    )
