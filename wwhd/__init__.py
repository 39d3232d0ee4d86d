"""WWHD: answers in the teacher's voice, grounded in his own material."""

from __future__ import annotations

import os

# Before numpy loads: one BLAS thread per process. The embedded index multiplies a 10k x 256
# matrix per query (~0.5 ms on one thread); OpenBLAS's thread pool made it 16 ms on this 2-core
# machine under load, and a web worker serving many requests gains nothing from it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # noqa: E402
from flask import Flask  # noqa: E402

from . import (  # noqa: E402
    database,
    limits,
    logs,
    metrics,
    models,  # noqa: F401  (imported for its side effect: the tables join SQLAlchemy's metadata)
    security,
    turn_starts,
)
from . import deps as deps_module  # noqa: E402
from .accounts import register_jwt_callbacks  # noqa: E402
from .api import guard  # noqa: E402
from .api.routes import register_blueprints  # noqa: E402
from .cli import wwhd_cli  # noqa: E402
from .config import load_config  # noqa: E402
from .errors import register_error_handlers  # noqa: E402
from .extensions import cors, db, jwt  # noqa: E402


def create_app(overrides: dict | None = None, *, deps=None) -> Flask:
    """Build the app: config → logs → extensions → deps → api → errors → cli.

    `deps` lets tests hand in their own providers/index (see wwhd.deps.Deps); by default they are
    built from config on first use. A served app (not a `flask` command, which must not open the
    embedded index) starts its job runner here when JOBS_AUTOSTART is on.
    """
    app = Flask(__name__)
    app.config.from_mapping(load_config(overrides))

    logs.init_app(app)
    turn_starts.init_app(app)  # first hook after the request id: before any other work
    db.init_app(app)
    jwt.init_app(app)
    cors.init_app(
        app,
        resources={r"/*": {"origins": app.config["ALLOW_ORIGINS"]}},
        supports_credentials=True,
        expose_headers=[
            "X-Request-ID",
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ],
        max_age=600,
        always_send=False,
    )  # no Origin header (curl, ALB checks): no CORS headers
    security.init_app(app)
    limits.init_app(app)
    metrics.init_app(app)
    guard.init_app(app)  # after the body size limit and the rate limiter: JSON depth, surrogates
    register_jwt_callbacks()
    database.init_app(app)
    deps_module.init_app(app, deps)
    register_blueprints(app)
    register_error_handlers(app)
    app.cli.add_command(wwhd_cli)
    if app.config["JOBS_AUTOSTART"] and click.get_current_context(silent=True) is None:
        deps_module.start_jobs(app)
    return app
