"""App factory, config safety, health, CLI and migrations on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, select, text

from tests.tests_support import migrate
from wwhd import create_app
from wwhd.extensions import db
from wwhd.models import Document, User


def test_production_refuses_default_jwt_secret(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("JWT_SECRET", raising=False)
    with pytest.raises(RuntimeError, match="JWT_SECRET"):
        create_app()
    monkeypatch.setenv("JWT_SECRET", "short")
    with pytest.raises(RuntimeError, match="JWT_SECRET"):
        create_app()


def test_production_starts_with_a_real_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("JWT_SECRET", "x" * 48)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    app = create_app()
    assert app.config["APP_ENV"] == "production" and app.config["DEMO_USER"] is False


def test_config_reads_aurora_secret(monkeypatch):
    from wwhd.config import database_url_from_env

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv(
        "DB_SECRET",
        '{"username": "wwhd", "password": "p@ss/word", "host": "db.internal", "port": 5432, "dbname": "wwhd"}',
    )
    assert (
        database_url_from_env() == "postgresql+psycopg://wwhd:p%40ss%2Fword@db.internal:5432/wwhd"
    )


def test_health_and_detailed(client):
    assert client.get("/health").status_code == 200
    detailed = client.get("/health/detailed")
    body = detailed.get_json()
    assert detailed.status_code == 200 and body["status"] == "ok"
    assert {"database", "qdrant", "llm"} <= set(body["checks"])
    assert body["checks"]["llm"]["provider"] == "offline"


def test_every_response_has_a_request_id(client):
    echoed = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    assert len(client.get("/nope").headers["X-Request-ID"]) >= 16


def test_unknown_route_and_method_are_json(client):
    missing = client.get("/api/v1/nope")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "NOT_FOUND"
    wrong = client.get("/api/v1/chat")
    assert wrong.status_code == 405 and wrong.get_json()["detail"]


def test_create_user_cli(app, runner):
    ok = runner.invoke(
        args=[
            "wwhd",
            "create-user",
            "boss@example.com",
            "--username",
            "boss",
            "--password",
            "long-enough-pw",
            "--role",
            "admin",
        ]
    )
    assert ok.exit_code == 0, ok.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "boss@example.com"))
        assert user.role == "admin" and user.password_hash.startswith("$argon2id$")
    again = runner.invoke(
        args=[
            "wwhd",
            "create-user",
            "boss@example.com",
            "--username",
            "boss2",
            "--password",
            "long-enough-pw",
        ]
    )
    assert again.exit_code != 0 and "already registered" in again.output
    short = runner.invoke(
        args=["wwhd", "create-user", "x@example.com", "--username", "xx1", "--password", "short"]
    )
    assert short.exit_code != 0 and "8 characters" in short.output


def test_load_samples_is_idempotent(app, runner):
    first = runner.invoke(args=["wwhd", "load-samples"])
    assert first.exit_code == 0, first.output
    from wwhd.deps import get_deps

    with app.app_context():
        docs = db.session.scalars(select(Document)).all()
        assert len(docs) >= 8 and all(d.status == "indexed" and d.chunk_count > 0 for d in docs)
        chunks = sum(d.chunk_count for d in docs)
        assert get_deps(app).index.count() == chunks
    second = runner.invoke(args=["wwhd", "load-samples"])
    assert second.exit_code == 0 and "0 loaded" in second.output
    with app.app_context():
        assert len(db.session.scalars(select(Document)).all()) == len(docs)
        assert get_deps(app).index.count() == chunks


def test_demo_user_only_in_dev(app, runner):
    result = runner.invoke(args=["wwhd", "ensure-demo-user"])
    assert result.exit_code != 0 and "APP_ENV=dev" in result.output


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_apply_and_match_the_models(backend, tmp_path, monkeypatch, request):
    url = (
        f"sqlite:///{tmp_path / 'm.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_db")
    )
    migrate(url)
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert {
        "users",
        "chats",
        "messages",
        "citations",
        "token_usage",
        "namespaces",
        "documents",
        "chunks",
    } <= tables
    with engine.connect() as conn:
        names = {row[0] for row in conn.execute(text("SELECT name FROM namespaces"))}
    assert {
        "general",
        "relationships",
        "money",
        "business",
        "feng_shui",
        "diet_food",
        "exercise_martial_arts",
        "meditation",
    } == names
    # The migrations produce exactly the schema the models declare.
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []
    engine.dispose()
    migrate(url, target="base", direction="downgrade")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
