"""gunicorn.conf.py's post_worker_init builds the app's dependencies before the first request."""

import gc
import json
import logging
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import wwhd.deps

ROOT = Path(__file__).resolve().parents[2]


def load_conf() -> dict:
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


@pytest.fixture(autouse=True)
def collector_restored():
    """post_worker_init tunes the collector of the process it runs in: give pytest's back."""
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


def test_a_worker_freezes_its_startup_heap_and_collects_fully_less_often():
    # In a process of its own: the collector's settings are process-wide.
    probe = (
        "import gc, json, runpy; conf = runpy.run_path('gunicorn.conf.py'); "
        "default = gc.get_threshold(); conf['freeze_startup_heap'](); "
        "print(json.dumps([default, gc.get_threshold(), gc.get_freeze_count()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    default, tuned, frozen = json.loads(out)
    assert frozen > 0
    assert tuned[:2] == default[:2]  # the young generations as Python sets them
    assert tuned[2] == load_conf()["FULL_COLLECTION_EVERY"] > default[2]


def test_app_is_not_preloaded():
    # psycopg 3 and embedded Qdrant must be created in the worker, after gevent patches.
    assert load_conf()["preload_app"] is False


def test_post_worker_init_builds_the_deps(app):
    assert app.extensions.get("wwhd") is None  # built lazily unless the hook runs
    load_conf()["post_worker_init"](SimpleNamespace(wsgi=app, log=logging.getLogger("test")))
    deps = app.extensions["wwhd"]
    assert deps is not None and deps.graph is not None and deps.index is not None
    with app.app_context():
        assert wwhd.deps.get_deps() is deps  # the first chat reuses them


def test_post_worker_init_failure_is_logged_not_fatal(app, caplog, monkeypatch):
    def broken(config, **_):
        raise RuntimeError("qdrant folder locked")

    monkeypatch.setattr(wwhd.deps, "build_deps", broken)
    load_conf()["post_worker_init"](SimpleNamespace(wsgi=app, log=logging.getLogger("test")))
    assert app.extensions.get("wwhd") is None
    assert "qdrant folder locked" in caplog.text
