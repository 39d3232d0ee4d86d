"""Ingestion's bulk work runs with the cyclic garbage collector paused (wwhd/knowledge/gc_pause.py):
full collections over the whole heap were ~1 s of a 5 MB transcript's ~3.8 CPU s."""

from __future__ import annotations

import gc
import json

import pytest

from bench.ingestion import transcript
from tests.tests_support import add_upload
from wwhd.deps import get_deps
from wwhd.extensions import db
from wwhd.knowledge import prepare
from wwhd.knowledge.files import get_file_store
from wwhd.knowledge.gc_pause import collector_paused
from wwhd.knowledge.job_index import index_job
from wwhd.models import Document


def test_pause_restores_collection_even_on_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("boom")
    assert gc.isenabled()


def test_inner_pause_does_not_resume_collection_early():
    with collector_paused():
        with collector_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_pause_leaves_a_disabled_collector_disabled():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_in_process_job_runs_without_cyclic_collections(app):
    data = transcript(0.3, seed=5)
    document_id, _ = add_upload(app, data)
    with app.app_context():
        doc = db.session.get(Document, document_id)
        index, store = get_deps(app).index, get_file_store(app)
        # A first run imports what the job imports lazily (compiling a module collects).
        index_job(doc, index, store, in_child=False)
        collections = []

        def count(phase, info):
            if phase == "start":
                collections.append(info["generation"])

        gc.callbacks.append(count)
        try:
            chunks = index_job(doc, index, store, in_child=False)
        finally:
            gc.callbacks.remove(count)
        db.session.remove()
    assert chunks > 100
    assert len(collections) <= 1  # the one when the pause ends (dozens without it)
    assert gc.isenabled()


def test_the_prepare_child_runs_without_the_collector(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"document_id": 1, "content_path": str(tmp_path / "absent.txt")}))
    try:
        assert prepare.main([str(spec), str(tmp_path)]) == 1  # the content file is missing
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert json.loads((tmp_path / "error.json").read_text())["type"] == "FileNotFoundError"
