"""Helpers shared by test modules (not fixtures)."""

from __future__ import annotations

from wwhd import create_app
from wwhd.accounts import create_user
from wwhd.database import init_migrate
from wwhd.extensions import db


def load_samples_and_login(app, role: str = "user"):
    result = app.test_cli_runner().invoke(args=["wwhd", "load-samples"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        create_user("llm@example.com", "llmuser", "correct-horse-battery", role)
        db.session.commit()
    client = app.test_client()
    tokens = client.post(
        "/api/v1/auth/login", json={"email": "llm@example.com", "password": "correct-horse-battery"}
    ).get_json()
    return client, {"Authorization": f"Bearer {tokens['access_token']}"}


def migrate(url: str, target: str = "head", direction: str = "upgrade") -> None:
    """Run Flask-Migrate against `url` up (or down) to `target`, then release the connections."""
    from flask_migrate import downgrade, upgrade

    app = create_app(
        {
            "APP_ENV": "testing",
            "DATABASE_URL": url,
            "QDRANT_PATH": ":memory:",
            "JWT_SECRET": "t" * 40,
        }
    )
    init_migrate(app)
    with app.app_context():
        (upgrade if direction == "upgrade" else downgrade)(revision=target)
        db.engine.dispose()


def add_upload(app, data: bytes, filename: str = "talk.vtt", in_child: bool = False):
    """Add `data` as an upload to the general namespace, as the documents API does, and commit:
    (document id, whether it was created rather than found as a duplicate)."""
    from wwhd.knowledge.files import get_file_store
    from wwhd.knowledge.ingest import add_source

    with app.app_context():
        result = add_source(
            "general",
            data=data,
            filename=filename,
            store=get_file_store(app),
            max_bytes=len(data),
            in_child=in_child,
        )
        db.session.commit()
        return result.document.id, result.created
