"""Database wiring: per-dialect connection settings and the id range URLs are parsed into."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import make_url
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from .extensions import db
from .offload import gevent_active

# Integer keys are 32-bit on PostgreSQL: a larger id in a query is an error there ("out of range
# for type integer"), and beyond 64 bits SQLite's driver raises too. Ids are parsed into this range
# instead, so an impossible id is simply not found.
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """`<int:…>` in every route: an id beyond MAX_ID is a 404 (never a database error)."""

    def to_python(self, value: str) -> int:
        number = super().to_python(value)
        if not 0 < number <= MAX_ID:
            # Raised rather than a ValidationError: werkzeug would then try the next rule and,
            # finding the same path under other methods, answer 405.
            raise NotFound(f"Nothing has id {value[:40]}: ids are whole numbers up to {MAX_ID}.")
        return number


MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def init_app(app: Flask) -> None:
    """Before the blueprints: route ids use IdConverter; SQLite gets its pragmas; `flask db`."""
    app.url_map.converters["int"] = IdConverter
    init_engine_events(app)
    app.cli.add_command(LazyMigrateGroup(app))


def init_migrate(app: Flask) -> None:
    """Bind Flask-Migrate to the app (idempotent). Needed before flask_migrate.upgrade() & co.;
    `flask db …` calls it itself. Not done in create_app: importing alembic costs ~0.1 s on every
    `flask` command and gunicorn start (wwhd/lazy.py)."""
    if "migrate" not in app.extensions:
        from flask_migrate import Migrate

        Migrate(app, db, directory=str(MIGRATIONS_DIR))


class LazyMigrateGroup(click.Group):
    """`flask db`: listed by name; Flask-Migrate's real group is imported when `flask db …` runs."""

    def __init__(self, app: Flask):
        super().__init__("db", help="Perform database migrations (Flask-Migrate).")
        self._app = app

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        init_migrate(self._app)
        from flask_migrate.cli import db as migrate_group

        return migrate_group.make_context(info_name, args, parent=parent, **extra)


def init_engine_events(app: Flask) -> None:
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if not url.drivername.startswith("sqlite"):
        return
    if url.database and url.database != ":memory:":
        # A fresh machine has no ./data yet; SQLite creates the file but not its folder.
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    with app.app_context():
        engine = db.engine
    # Under gunicorn's gevent worker, WAL checkpoints (a copy and an fsync inside whichever commit
    # crosses 1,000 pages) move to a real OS thread: wwhd/sqlite_checkpoint.py.
    checkpoint_elsewhere = bool(url.database and url.database != ":memory:" and gevent_active())
    if checkpoint_elsewhere:
        from . import sqlite_checkpoint

        sqlite_checkpoint.start(url.database)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):
        # WAL lets readers work while a stream's answer is written; FKs make cascades real;
        # busy_timeout turns brief write contention into a wait instead of "database is locked".
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL (SQLite's recommendation for WAL): no fsync per commit, only at checkpoints. The
        # file stays consistent; a power loss or OS crash (not a process crash) may lose the last
        # commits. A turn commits twice, and in a gevent worker each fsync stalls every stream
        # (0.4 ms median, 6 ms spikes measured here). PostgreSQL is the durable choice.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        if checkpoint_elsewhere:
            cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()
