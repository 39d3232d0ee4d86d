"""Long-lived collaborators (LLM, embedder, index, compiled graph, job runner), built once per app."""

from __future__ import annotations

import atexit
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

from .extensions import per_app
from .knowledge.files import get_file_store
from .knowledge.folder_lock import IN_USE, held_by_another_process
from .knowledge.jobs import JobRunner

if TYPE_CHECKING:  # qdrant_client and langgraph load in build_deps, not at import (wwhd/lazy.py)
    from .knowledge.index import KnowledgeIndex
    from .providers import ChatModel, Embedder


@dataclass(frozen=True)
class Deps:
    chat_model: ChatModel
    embedder: Embedder | None
    index: KnowledgeIndex
    graph: object  # compiled LangGraph


def build_deps(
    config: Mapping, *, chat_model: ChatModel | None = None, index: KnowledgeIndex | None = None
) -> Deps:
    # lazy: langgraph, and numpy + wordllama via the providers (wwhd/lazy.py)
    from .pipeline.graph import build_graph
    from .providers import make_chat_model, make_embedder

    embedder = make_embedder(config)
    if index is None:
        index = _open_index(config, embedder)
        # Close while the interpreter is intact: local mode's finaliser fails during shutdown.
        atexit.register(index.client.close)
    return Deps(
        chat_model=chat_model or make_chat_model(config),
        embedder=embedder,
        index=index,
        graph=build_graph(),
    )


def _open_index(config: Mapping, embedder: Embedder | None, paged: bool = False) -> KnowledgeIndex:
    from .knowledge.index import KnowledgeIndex, make_client  # lazy: qdrant_client

    path = config["QDRANT_PATH"]
    if not config["QDRANT_URL"] and path != ":memory:" and held_by_another_process(path):
        raise RuntimeError(IN_USE.format(path=path))  # before qdrant-client leaks its lock file
    client = make_client(config["QDRANT_URL"], config["QDRANT_API_KEY"], path, paged=paged)
    return KnowledgeIndex(
        client,
        config["QDRANT_COLLECTION"],
        embedder,
        config["EMBED_DIM"],
        local=not config["QDRANT_URL"],
    )


def init_app(app: Flask, deps: Deps | None) -> None:
    # Built lazily: `flask db upgrade` must not open (and lock) the embedded Qdrant folder.
    app.extensions["wwhd"] = deps


def get_deps(app: Flask | None = None) -> Deps:
    app = app or current_app._get_current_object()
    return per_app(app, "wwhd", lambda: build_deps(app.config))


@contextmanager
def maintenance_index(app: Flask | None = None) -> Iterator[KnowledgeIndex]:
    """The index for reconcile and reindex. The app's own when its dependencies are built (or
    given, or Qdrant is a server or in memory); otherwise, embedded on disk, one that reads and
    writes the folder a page at a time instead of loading every point (knowledge/local_paged.py),
    built without the chat model and graph, and closed at the end of the block."""
    app = app or current_app._get_current_object()
    config = app.config
    path = config["QDRANT_PATH"]
    if app.extensions.get("wwhd") is not None or config["QDRANT_URL"] or path in ("", ":memory:"):
        yield get_deps(app).index
        return
    from .providers import make_embedder  # lazy: numpy + wordllama (wwhd/lazy.py)

    index = _open_index(config, make_embedder(config), paged=True)
    try:
        yield index
    finally:
        index.client.close()


def get_runner(app: Flask | None = None) -> JobRunner:
    """The app's job runner, built on first use with the app's index and file store. Started
    (start-up sweep, periodic index check) by start_jobs(), not here."""
    app = app or current_app._get_current_object()
    return per_app(
        app,
        "wwhd_jobs",
        lambda: JobRunner(app, get_deps(app).index, get_file_store(app), app.config["JOB_WORKERS"]),
    )


def start_jobs(app: Flask) -> JobRunner | None:
    """Start the runner of a serving app: heal the index from SQL, close the turns a dead worker
    left `streaming`, resume jobs a dead process left, then repeat the checks periodically.
    Never raises: /health must still answer."""
    from .stuck_turns import close_stuck_turns

    try:
        runner = get_runner(app)
        if not runner.startup:
            runner.every("stuck-turns", app.config["STUCK_TURN_CHECK_SECONDS"], close_stuck_turns)
        runner.start()
        return runner
    except Exception:
        app.logger.exception("starting the job runner failed; jobs start on first upload")
        return None
