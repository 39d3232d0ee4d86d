"""Migration 0003 on existing data (SQLite and PostgreSQL): nothing lost, duplicates merged, reversible."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.tests_support import migrate

ROWS_BEFORE_0003 = [
    "INSERT INTO users (id, email, username, password_hash, role, is_active, settings, created_at)"
    " VALUES (1, 'a@example.com', 'a', 'h', 'user', TRUE, '{}', '2026-01-01'),"
    " (2, 'b@example.com', 'b', 'h', 'admin', TRUE, '{}', '2026-01-01')",
    "INSERT INTO chats (id, user_id, title, created_at, updated_at)"
    " VALUES ('c1', 1, 'chat', '2026-01-01', '2026-01-01')",
    "INSERT INTO messages (id, chat_id, seq, role, content, status, namespaces, meta, created_at)"
    " VALUES ('m1', 'c1', 1, 'user', 'q', 'complete', '[]', '{}', '2026-01-01'),"
    " ('m2', 'c1', 2, 'assistant', 'a', 'complete', '[]', '{}', '2026-01-01')",
    "INSERT INTO citations (id, message_id, position, title, url, youtube_url, timestamp,"
    " namespace, score) VALUES (1, 'm2', 1, 't', '', '', '', 'general', 0)",
    # The duplicates concurrent posts left behind: three answer ratings, two citation ratings.
    "INSERT INTO feedback (id, message_id, user_id, citation_id, rating, created_at) VALUES"
    " (1, 'm2', 1, NULL, 'up', '2026-01-01'), (2, 'm2', 1, NULL, 'up', '2026-01-01'),"
    " (3, 'm2', 1, NULL, 'down', '2026-01-02'), (4, 'm2', 1, 1, 'up', '2026-01-01'),"
    " (5, 'm2', 1, 1, 'down', '2026-01-02')",
    "DELETE FROM users WHERE id = 2",
]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_0003_keeps_the_data_and_can_be_undone(backend, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'h.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_db")
    )
    migrate(url, "0002")
    engine = create_engine(url)
    with engine.begin() as conn:
        if backend == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        for statement in ROWS_BEFORE_0003:
            conn.execute(text(statement))
    engine.dispose()

    migrate(url, "0003")
    engine = create_engine(url)
    with engine.begin() as conn:
        # Rebuilding `users` (SQLite) must not have cascaded into chats and messages.
        assert conn.execute(text("SELECT COUNT(*) FROM messages")).scalar() == 2
        stamps = conn.execute(text("SELECT security_stamp FROM users")).scalars().all()
        assert len(stamps) == 1 and len(stamps[0]) == 32
        kept = conn.execute(text("SELECT id, citation_id, rating FROM feedback ORDER BY id")).all()
        assert [tuple(row) for row in kept] == [(3, None, "down"), (5, 1, "down")]
        if backend == "sqlite":
            # AUTOINCREMENT from now on (ids freed from here are never handed out again)
            ddl = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'")
            ).scalar()
            assert "AUTOINCREMENT" in ddl
        if backend == "postgresql":  # the rows above set their ids by hand
            conn.execute(text("SELECT setval('users_id_seq', 2)"))
        insert_user = (
            "INSERT INTO users (email, username, password_hash, role, is_active, settings,"
            " created_at, security_stamp) VALUES (:email, :email, 'h', 'user', TRUE, '{}',"
            " '2026-01-03', 'x')"
        )
        conn.execute(text(insert_user), {"email": "c@example.com"})
        freed = conn.execute(text("SELECT id FROM users WHERE email = 'c@example.com'")).scalar()
        conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": freed})
        conn.execute(text(insert_user), {"email": "d@example.com"})
        latest = conn.execute(text("SELECT id FROM users WHERE email = 'd@example.com'")).scalar()
        assert latest > freed  # the id freed after the migration is not handed out again
        duplicate = text(
            "INSERT INTO feedback (message_id, user_id, citation_id, rating, created_at)"
            " VALUES ('m2', 1, NULL, 'up', '2026-01-03')"
        )
    with pytest.raises(Exception, match="(?i)unique"):
        with engine.begin() as conn:
            conn.execute(duplicate)
    engine.dispose()

    migrate(url, "0002", direction="downgrade")
    engine = create_engine(url)
    columns = {c["name"] for c in inspect(engine).get_columns("users")}
    assert "security_stamp" not in columns
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM messages")).scalar() == 2
    engine.dispose()
