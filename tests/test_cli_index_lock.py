"""`flask wwhd ingest` (and the other index commands) while another process holds embedded Qdrant:
a clear "stop the server" and nothing written, instead of a traceback and a `failed` row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wwhd.extensions import db
from wwhd.models import Document

SAMPLE = Path(__file__).resolve().parents[1] / "wwhd" / "samples" / "meditation_sitting_still.md"

HOLDER = """
import sys
from qdrant_client import QdrantClient
client = QdrantClient(path=sys.argv[1])  # what the server's worker does (embedded mode)
print("ready", flush=True)
sys.stdin.read()  # hold the folder until the test closes our stdin
client.close()
"""


@pytest.fixture
def held_index(tmp_path):
    """Another process (as the server would) holding the embedded index folder."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "qdrant")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()


def _document_count(app) -> int:
    with app.app_context():
        return db.session.query(Document).count()


def test_ingest_while_the_index_is_held_says_stop_the_server(disk_app, held_index):
    result = disk_app.test_cli_runner().invoke(
        args=["wwhd", "ingest", str(SAMPLE), "--namespace", "meditation"]
    )
    assert result.exit_code == 1, result.output
    assert "Stop the server" in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert _document_count(disk_app) == 0  # no `failed` (or any) row


@pytest.mark.parametrize(
    "args", [["load-samples"], ["reindex", "--all"], ["reconcile"]], ids=lambda a: a[0]
)
def test_other_index_commands_check_the_lock_too(disk_app, held_index, args):
    result = disk_app.test_cli_runner().invoke(args=["wwhd", *args])
    assert result.exit_code == 1 and "Stop the server" in result.output, result.output
    assert _document_count(disk_app) == 0


def test_ingest_works_once_the_holder_is_gone(disk_app, held_index):
    held_index.stdin.close()
    held_index.wait(timeout=30)
    result = disk_app.test_cli_runner().invoke(
        args=["wwhd", "ingest", str(SAMPLE), "--namespace", "meditation"]
    )
    assert result.exit_code == 0, result.output
    assert "1 indexed" in result.output
    assert _document_count(disk_app) == 1


def test_ingest_opens_the_index_before_writing_rows(disk_app, held_index, monkeypatch):
    # The server started between the lock check and the first write: Qdrant's own refusal is
    # turned into the same message, still before any row exists.
    import wwhd.cli

    monkeypatch.setattr(wwhd.cli, "require_free_index", lambda: None)
    result = disk_app.test_cli_runner().invoke(
        args=["wwhd", "ingest", str(SAMPLE), "--namespace", "meditation"]
    )
    assert result.exit_code == 1 and "Stop the server" in result.output, result.output
    assert _document_count(disk_app) == 0
