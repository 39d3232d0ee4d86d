"""Per-dialect connection settings applied when the engine connects."""
from __future__ import annotations

from flask import Flask
from sqlalchemy import event

from .extensions import db


def init_engine_events(app: Flask) -> None:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
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
