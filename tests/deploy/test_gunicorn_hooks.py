"""gunicorn.conf.py's post_worker_init builds the app's dependencies before the first request."""

import logging
import runpy
from pathlib import Path
from types import SimpleNamespace

import wwhd.deps

ROOT = Path(__file__).resolve().parents[2]


def load_conf() -> dict:
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


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
