"""The image's exact command (scripts/entrypoint) migrates, serves /health and drains on SIGTERM."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QDRANT_"))}
    env.update(
        {
            # Embedded defaults (SQLite, local Qdrant, offline provider) in a temp dir.
            "APP_ENV": "dev",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'wwhd.db'}",
            "QDRANT_PATH": str(tmp_path / "qdrant"),
            "UPLOAD_DIR": str(tmp_path / "uploads"),
            "JWT_SECRET": "test-secret-test-secret-test-secret",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "entrypoint")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"entrypoint exited early ({proc.returncode}):\n{proc.stdout.read()}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"/health never answered:\n{proc.stdout.read()}")
    yield base, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)
    proc.stdout.close()


def post_json(url: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        exc.close()  # closes the response's socket
        return exc.code, {}


def test_entrypoint_serves_health_and_exits_cleanly_on_sigterm(server) -> None:
    base, proc = server
    with urllib.request.urlopen(base + "/health", timeout=5) as resp:
        assert resp.status == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_sigterm_lets_a_running_stream_finish(server) -> None:
    base, proc = server
    creds = {"email": "drain@example.com", "password": "drain-pass-123", "username": "drain"}
    status, _ = post_json(base + "/api/v1/auth/register", creds)
    assert status == 201, status
    status, body = post_json(
        base + "/api/v1/auth/login", {"email": creds["email"], "password": creds["password"]}
    )
    assert status == 200 and "access_token" in body, (status, body)
    req = urllib.request.Request(
        base + "/api/v1/chat/stream",
        json.dumps({"content": "How do I start meditating?"}).encode(),
        {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {body['access_token']}",
            "Accept": "text/event-stream",
        },
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 200
        first = resp.readline()
        assert first.startswith((b"event:", b"id:", b":", b"data:")), first
        # Mid-stream: gunicorn stops accepting but lets this response complete.
        proc.send_signal(signal.SIGTERM)
        rest = resp.read().decode()
    assert "event: done" in rest, rest[-500:]
    assert proc.wait(timeout=130) == 0
