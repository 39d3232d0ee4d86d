"""WWHD: answers in the teacher's voice, grounded in his own material."""

from __future__ import annotations

import os

# Before numpy loads: one BLAS thread per process. The embedded index multiplies a 10k x 256
# matrix per query (~0.5 ms on one thread); OpenBLAS's thread pool made it 16 ms on this 2-core
# machine under load, and a web worker serving many requests gains nothing from it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # noqa: E402
from flask import Flask  # noqa: E402

from .config import load_config  # noqa: E402


def create_app(overrides: dict | None = None, *, deps=None) -> Flask:
    """Build the app: config → logs → extensions → deps → api → errors → cli.

    `deps` lets tests hand in their own providers/index (see wwhd.deps.Deps); by default they are
    built from config on first use. A served app (not a `flask` command, which must not open the
    embedded index) starts its job runner here when JOBS_AUTOSTART is on.
    """
    app = Flask(__name__)
    app.config.from_mapping(load_config(overrides))

    from . import logs

    logs.init_app(app)

    from .extensions import cors, db, jwt

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
    from . import limits, metrics, security

    security.init_app(app)
    limits.init_app(app)
    metrics.init_app(app)
    from .api import guard

    guard.init_app(app)  # after the body size limit and the rate limiter: JSON depth, surrogates
    from . import models  # noqa: F401  (register tables with SQLAlchemy metadata)
    from .accounts import register_jwt_callbacks

    register_jwt_callbacks()
    from . import database

    database.init_app(app)

    from . import deps as deps_module

    deps_module.init_app(app, deps)

    from .api import register_blueprints

    register_blueprints(app)

    from .errors import register_error_handlers

    register_error_handlers(app)

    from .cli import wwhd_cli

    app.cli.add_command(wwhd_cli)
    if app.config["JOBS_AUTOSTART"] and click.get_current_context(silent=True) is None:
        deps_module.start_jobs(app)
    return app
