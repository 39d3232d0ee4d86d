"""Kill the real server with SIGKILL while it indexes; a restart finishes the job with no drift."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "admin-password-for-sigkill"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(
    method: str,
    url: str,
    token: str | None = None,
    body: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, dict]:
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, body, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        with exc:  # closes the response's socket
            return exc.code, json.loads(exc.read() or b"{}")


def until(condition, deadline_s: float, what: str):
    """Poll an observable condition with a deadline (the server runs in another process)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def big_transcript(minutes: int = 150) -> bytes:
    lines = ["WEBVTT", ""]
    for n, start in enumerate(range(0, minutes * 60, 4)):
        stamp = f"{start // 3600:02d}:{start % 3600 // 60:02d}:{start % 60:02d}.000"
        end = start + 4
        stamp_end = f"{end // 3600:02d}:{end % 3600 // 60:02d}:{end % 60:02d}.000"
        lines += [
            f"{stamp} --> {stamp_end}",
            f"Cue {n}: keep the kettle warm, breathe out slowly, count to {n % 97}.",
            "",
        ]
    return "\n".join(lines).encode()


def multipart(fields: dict, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
        for k, v in fields.items()
    ]
    parts.append(
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
        f"Content-Type: text/vtt\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.mark.slow  # 20 s: two gunicorn starts
def test_sigkill_mid_indexing_then_restart_completes_without_drift(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QDRANT_", "DATABASE_"))
    }
    env.update(
        {
            "APP_ENV": "dev",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "FLASK_APP": "wsgi",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'wwhd.db'}",
            "QDRANT_PATH": str(tmp_path / "qdrant"),
            "UPLOAD_DIR": str(tmp_path / "uploads"),
            "JWT_SECRET": "s" * 40,
            "JOB_HEARTBEAT_SECONDS": "1",
            "JOB_STALE_SECONDS": "2",
            "RATE_LIMIT_ENABLED": "0",
        }
    )
    flask = [str(BIN / "flask")]
    for args in (
        ["db", "upgrade"],
        [
            "wwhd",
            "create-user",
            "ops@example.com",
            "--username",
            "ops",
            "--password",
            PASSWORD,
            "--role",
            "admin",
        ],
    ):
        subprocess.run(
            flask + args, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
        )

    def start():
        proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        until(lambda: _alive(base), 60, "/health")
        return proc

    server = start()
    try:
        _, tokens = call(
            "POST",
            base + "/api/v1/auth/login",
            body=json.dumps({"email": "ops@example.com", "password": PASSWORD}).encode(),
        )
        token = tokens["access_token"]
        body, ctype = multipart(
            {"namespace": "meditation", "youtube_url": "https://youtu.be/abcDEF12345"},
            "long.vtt",
            big_transcript(),
        )
        status, doc = call("POST", base + "/api/v1/documents/upload", token, body, ctype)
        assert status == 202, doc
        until(
            lambda: (
                call("GET", f"{base}/api/v1/documents/{doc['id']}", token)[1]["status"]
                == "processing"
            ),
            60,
            "the job to start",
        )
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # no cleanup, no shutdown hooks: a crash
        server.wait(timeout=10)

    server = start()
    try:
        # The first API request starts the job runner, whose recovery sweep finds the stale job.
        def finished():
            status, shown = call("GET", f"{base}/api/v1/documents/{doc['id']}", token)
            return shown if shown.get("status") in ("indexed", "failed") else None

        shown = until(finished, 120, "the interrupted job to finish")
        assert shown["status"] == "indexed" and shown["chunk_count"] > 50, shown
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)

    # Embedded Qdrant is free again: compare SQL and the index.
    report = subprocess.run(
        flask + ["wwhd", "reconcile"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stdout + report.stderr
    assert f"{shown['chunk_count']} points, {shown['chunk_count']} chunk rows" in report.stdout


def _alive(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/health", timeout=2) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False
