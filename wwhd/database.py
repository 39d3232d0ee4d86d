"""Per-dialect connection settings applied when the engine connects."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import make_url

from .extensions import db


def init_engine_events(app: Flask) -> None:
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if not url.drivername.startswith("sqlite"):
        return
    if url.database and url.database != ":memory:":
        # A fresh machine has no ./data yet; SQLite creates the file but not its folder.
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):
        # WAL lets readers work while a stream's answer is written; FKs make cascades real;
        # busy_timeout turns brief write contention into a wait instead of "database is locked".
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()
