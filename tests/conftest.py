"""Shared fixtures: a real app on SQLite + in-memory Qdrant + offline provider, and a fake LLM server."""

from __future__ import annotations

import json
import os
from io import BytesIO

import pytest
from flask.testing import FlaskClient

from tests.fakes.openai_server import FakeOpenAI
from wwhd import create_app
from wwhd.extensions import db

POSTGRES_URL = os.environ.get(
    "WWHD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


class ClosingClient(FlaskClient):
    """Flask's test client, closing the request body it built. Werkzeug's test client spools a
    multipart body over 500 KB into a TemporaryFile (`wsgi.input`) and never closes it: every large
    upload in a test left an open file (a ResourceWarning, an error here)."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        body = response.request.environ.get("wsgi.input") if response.request else None
        if body is not None and not isinstance(body, BytesIO):
            body.close()  # the app has read it: a view reads its body before it answers
        return response


def make_app(tmp_path, **overrides):
    config = {
        "APP_ENV": "testing",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
        "QDRANT_PATH": ":memory:",
        "QDRANT_URL": "",
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
        "MODEL_EMBED": "",
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "UPLOADS_BUCKET_NAME": "",
        "REDIS_URL": "",
        "JWT_SECRET": "test-secret-that-is-long-enough-0123456789",
    }
    config.update(overrides)
    app = create_app(config)
    app.test_client_class = ClosingClient
    with app.app_context():
        db.create_all()
        from wwhd.knowledge.namespaces import seed_namespaces

        seed_namespaces()
        db.session.commit()
    return app


def close_app(app) -> None:
    """Stop the app's background job runner, then close its index client and database."""
    runner = app.extensions.get("wwhd_jobs")
    if runner is not None:
        runner.shutdown(wait=True)
    deps = app.extensions.get("wwhd")
    if deps is not None:
        deps.index.client.close()  # embedded Qdrant on disk holds its folder's .lock file open
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    yield app
    close_app(app)


@pytest.fixture
def disk_app(tmp_path):
    """An app whose embedded Qdrant lives in a folder on disk (the default for `make dev`), not in
    memory: for what depends on the folder (its lock, paged reads)."""
    app = make_app(tmp_path, QDRANT_PATH=str(tmp_path / "qdrant"))
    yield app
    close_app(app)


@pytest.fixture
def app_factory(tmp_path):
    """make_app with overrides, each app in its own folder; every app built is closed at the end."""
    apps = []

    def build(name: str = "app", **overrides):
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        app = make_app(folder, **overrides)
        apps.append(app)
        return app

    yield build
    for app in apps:
        close_app(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def samples(app, runner):
    """The shipped sample knowledge base, loaded through the CLI."""
    result = runner.invoke(args=["wwhd", "load-samples"])
    assert result.exit_code == 0, result.output
    return app


class Auth:
    """Creates users and returns ready-made Authorization headers."""

    def __init__(self, app, client):
        self.app, self.client = app, client
        self._n = 0

    def create(self, role: str = "user", password: str = "correct-horse-battery") -> dict:
        from wwhd.accounts import create_user

        self._n += 1
        with self.app.app_context():
            user = create_user(f"{role}{self._n}@example.com", f"{role}{self._n}", password, role)
            db.session.commit()
            return {
                "id": user.id,
                "email": user.email,
                "username": user.username,
                "password": password,
            }

    def login(self, user: dict) -> dict:
        reply = self.client.post(
            "/api/v1/auth/login", json={"email": user["email"], "password": user["password"]}
        )
        assert reply.status_code == 200, reply.get_json()
        return reply.get_json()

    def headers(self, role: str = "user") -> dict:
        tokens = self.login(self.create(role))
        return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture
def auth(app, client):
    return Auth(app, client)


def parse_sse(raw: str) -> list[dict]:
    """Events as {"id", "event", "data"}; comments (pings) kept as {"comment": ...}."""
    events = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        event: dict = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                event["comment"] = line[1:].strip()
            else:
                key, _, value = line.partition(": ")
                event[key] = json.loads(value) if key == "data" else value
        events.append(event)
    return events


@pytest.fixture
def read_sse():
    return parse_sse


@pytest.fixture(scope="session")
def fake_llm_server():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(fake_llm_server):
    fake_llm_server.reset()
    yield fake_llm_server
    fake_llm_server.reset()


@pytest.fixture
def llm_app(tmp_path, fake_llm):
    """The app talking to the fake OpenAI-compatible server through langchain-openai."""
    app = make_app(
        tmp_path,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_llm.base_url,
        MODEL_CHAT="gpt-4o-mini",
        LLM_MAX_RETRIES=0,
        LLM_TIMEOUT_S=5,
    )
    yield app
    close_app(app)


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), connect_timeout=2):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_url():
    """PostgreSQL for the tests that need it; skipped where none runs, unless CI demands it."""
    if not postgres_available():
        if os.environ.get("WWHD_REQUIRE_POSTGRES") == "1":
            pytest.fail(
                f"PostgreSQL is required (WWHD_REQUIRE_POSTGRES=1) but {POSTGRES_URL} is unreachable"
            )
        pytest.skip("PostgreSQL not reachable")
    return POSTGRES_URL


@pytest.fixture
def postgres_db(postgres_url):
    """A fresh, empty PostgreSQL database for one test (dropped afterwards), so runs never collide."""
    import uuid

    import psycopg

    name = f"wwhd_test_{uuid.uuid4().hex[:12]}"
    admin_url = postgres_url.replace("+psycopg", "")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
