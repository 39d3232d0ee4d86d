"""Gunicorn settings: the one serving config for the container image and `make dev`."""

import os

from flask.cli import get_load_dotenv, load_dotenv

# `.flaskenv` and `.env` (python-dotenv), read exactly as `flask` commands read them: found from the
# working directory up, variables already set win, FLASK_SKIP_DOTENV=1 turns it off. Here, before
# `bind`, so HOST/PORT from .env apply and the workers inherit the rest (DATABASE_URL, DATA_DIR, …):
# `make dev` migrates and serves the same database. The image has no .env (.dockerignore).
if get_load_dotenv():
    load_dotenv()

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"

# SSE chat streams stay open for a minute or more; gevent greenlets hold many
# of them per process instead of tying up one thread or worker each.
worker_class = "gevent"
worker_connections = 1000

# One process by default: embedded Qdrant (local mode) locks its folder to a
# single process. Raise WEB_CONCURRENCY only when QDRANT_URL points at a server.
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))

# Longer than the longest chat, so neither the worker timeout nor a SIGTERM
# during a deploy cuts a stream. Kept under the task's 120 s ECS stop timeout
# (taskdef_overrides in copilot/api/manifest.yml) so we exit before SIGKILL.
timeout = 120
graceful_timeout = 110

# Above the ALB's 60 s idle timeout: the ALB must close idle keep-alive
# connections first, or it may send a request on a socket we just closed (502).
keepalive = 75

# The ALB sets X-Forwarded-For/Proto; only the ALB can reach the task.
forwarded_allow_ips = "*"

# The app writes its own JSON request logs; gunicorn's access log would double them.
accesslog = None
errorlog = "-"

# No operator shell in the container; avoids writing a socket under $HOME.
control_socket_disable = True

# preload_app must stay False (gunicorn's default): the app, its psycopg 3 connections and the
# embedded Qdrant client have to be created in the worker after gevent has patched the stdlib,
# and embedded Qdrant locks its folder to the one process that opens it.
preload_app = False


def post_worker_init(worker):
    """Build the LLM client, index and compiled graph before the first request, not during it (~1 s)."""
    app = worker.wsgi  # the loaded WSGI callable: the Flask app of wsgi:app
    if not hasattr(app, "extensions"):
        return
    from wwhd.deps import get_deps

    try:
        # Local mode's search postings are built lazily (CLI commands never search); a serving
        # worker builds them here so its first search does not scan every point.
        get_deps(app).index.prepare_search()
    except Exception:  # noqa: BLE001 - serve /health anyway; get_deps retries on the first chat
        worker.log.exception(
            "building the app's dependencies at start-up failed; retrying on first use"
        )
    freeze_startup_heap()


FULL_COLLECTION_EVERY = 100  # middle-generation collections per full collection


def freeze_startup_heap():
    """Move everything alive after start-up (modules, models, the embedded index's points) out of
    the cyclic garbage collector's reach. Each full collection traversed that whole heap with the
    GIL held: 180-290 ms pauses of every request and stream, several per large upload
    (bench/loop_watch.py). Objects made later are collected as usual; frozen ones are still freed
    by reference counting."""
    import gc

    gc.collect()
    gc.freeze()
    # Full collections 10x rarer (Python's default is one per 10 middle-generation passes). The
    # young generations still go as usual; a full pass instead scans every live turn's objects:
    # during 200 concurrent streams it came twice per burst and stalled everything 25-55 ms, the
    # slowest /health probe of the run (gc.callbacks timings). With 100 it comes about every fifth
    # burst: /health p99 41-94 ms vs 54-91 over five pairs, same peak RSS (BENCHMARKS.md §8).
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
