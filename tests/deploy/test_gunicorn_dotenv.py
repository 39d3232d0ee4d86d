"""gunicorn reads `.env` as `flask` commands do, so `make dev` migrates and serves one database."""

from __future__ import annotations

import uuid

from tests.serving import Gunicorn, clean_env, flask, free_port, get_json


def test_gunicorn_serves_with_the_settings_and_database_of_dotenv(tmp_path):
    port = free_port()
    marker = f"dotenv-{uuid.uuid4().hex[:8]}"
    (tmp_path / ".env").write_text(
        "\n".join(
            [
                "# like .env.example: values with comments after them",
                "FLASK_APP=wsgi",
                "APP_ENV=dev                # dev settings",
                f"APP_VERSION={marker}",
                "HOST=127.0.0.1",
                f"PORT={port}",
                f"DATA_DIR={tmp_path / 'data'}",
                f"DATABASE_URL=sqlite:///{tmp_path / 'from-dotenv.db'}",
                f"QDRANT_PATH={tmp_path / 'qdrant'}",
                f"UPLOAD_DIR={tmp_path / 'uploads'}",
                "JWT_SECRET=" + "d" * 40,
                "",
            ]
        )
    )
    env = clean_env()  # nothing but .env says where to bind or which database to use
    flask(env, "db", "upgrade", cwd=tmp_path)
    flask(
        env,
        "wwhd",
        "create-user",
        "dotenv@example.com",
        "--username",
        "dotenv",
        "--password",
        "dotenv-password",
        cwd=tmp_path,
    )
    assert (tmp_path / "from-dotenv.db").exists()

    # Bound to .env's PORT (read by gunicorn.conf.py in the master), settings seen by the worker.
    with Gunicorn(env, tmp_path, port, tmp_path / "gunicorn.log") as server:
        status, health = get_json(server.base + "/health")
        assert status == 200 and health["version"] == marker
        status, detailed = get_json(server.base + "/health/detailed")
        assert detailed["environment"] == "dev", detailed
        assert detailed["checks"]["database"]["status"] == "ok", detailed
        # The user the CLI created is in the database gunicorn serves.
        status, tokens = get_json(
            server.base + "/api/v1/auth/login",
            body={"email": "dotenv@example.com", "password": "dotenv-password"},
        )
        assert status == 200 and tokens["access_token"], tokens


def test_variables_already_set_win_over_dotenv(tmp_path):
    port, other = free_port(), free_port()
    (tmp_path / ".env").write_text(f"APP_ENV=dev\nPORT={other}\nAPP_VERSION=from-dotenv\n")
    env = clean_env(
        HOST="127.0.0.1",
        PORT=str(port),
        APP_VERSION="from-environment",
        DATA_DIR=str(tmp_path / "data"),
        QDRANT_PATH=str(tmp_path / "qdrant"),
        JWT_SECRET="e" * 40,
    )
    flask(env, "--app", "wsgi", "db", "upgrade", cwd=tmp_path)
    with Gunicorn(env, tmp_path, port, tmp_path / "gunicorn.log") as server:
        assert get_json(server.base + "/health")[1]["version"] == "from-environment"
