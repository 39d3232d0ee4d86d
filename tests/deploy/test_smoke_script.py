"""scripts/smoke against a stub API on loopback: passes when healthy, names the failing check otherwise."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SMOKE = Path(__file__).resolve().parents[2] / "scripts" / "smoke"


class StubApi(BaseHTTPRequestHandler):
    chat_reply: dict = {"chat_id": "c1", "content": "hi"}
    seen: list = []

    def _send(self, status: int, body: dict | None = None) -> None:
        raw = json.dumps(body or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self.seen.append(("GET", self.path, None, None))
        if self.path == "/health":
            self._send(200, {"status": "ok"})
        elif self.path == "/health/detailed":
            self._send(200, {"status": "ok", "checks": {}})
        else:
            self._send(404, {"detail": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(("POST", self.path, body, self.headers.get("Authorization")))
        if self.path == "/api/v1/auth/login":
            ok = body == {"email": "smoke@example.com", "password": "pw"}
            self._send(200 if ok else 401, {"access_token": "tok"} if ok else {"detail": "bad"})
        elif self.path == "/api/v1/chat":
            authed = self.headers.get("Authorization") == "Bearer tok"
            self._send(200 if authed else 401, self.chat_reply)
        else:
            self._send(404)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def stub():
    StubApi.seen = []
    StubApi.chat_reply = {"chat_id": "c1", "content": "hi"}
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", StubApi
    server.shutdown()


def run_smoke(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SMOKE), *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_smoke_passes_against_healthy_api(stub) -> None:
    base, api = stub
    result = run_smoke(base + "/", "--email", "smoke@example.com", "--password", "pw")
    assert result.returncode == 0, result.stderr
    paths = [(m, p) for m, p, _, _ in api.seen]
    assert paths == [
        ("GET", "/health"),
        ("GET", "/health/detailed"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/chat"),
    ]
    chat = api.seen[-1]
    assert chat[3] == "Bearer tok" and set(chat[2]) == {"content"}


def test_smoke_reads_credentials_from_env(stub) -> None:
    base, _ = stub
    env = {"SMOKE_EMAIL": "smoke@example.com", "SMOKE_PASSWORD": "pw", "PATH": "/usr/bin:/bin"}
    assert run_smoke(base, env=env).returncode == 0


def test_smoke_fails_clearly(stub) -> None:
    base, api = stub
    api.chat_reply = {"content": "no id"}
    result = run_smoke(base, "--email", "smoke@example.com", "--password", "pw")
    assert result.returncode == 1 and "chat_id" in result.stderr
    result = run_smoke(base, "--email", "smoke@example.com", "--password", "wrong")
    assert result.returncode == 1 and "HTTP 401" in result.stderr
    result = run_smoke(base, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "SMOKE_EMAIL" in result.stderr


def test_smoke_is_stdlib_only_and_executable() -> None:
    assert SMOKE.stat().st_mode & 0o111
    text = SMOKE.read_text()
    assert text.startswith("#!/usr/bin/env python3")
    imports = {
        line.split()[1].split(".")[0]
        for line in text.splitlines()
        if line.startswith(("import ", "from "))
    }
    assert imports <= set(sys.stdlib_module_names), imports - set(sys.stdlib_module_names)
