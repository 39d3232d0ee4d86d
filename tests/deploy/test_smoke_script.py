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
        elif self.path == "/api/v1/auth/me":
            authed = self.headers.get("Authorization") == "Bearer tok"
            self._send(200 if authed else 401, {"email": "smoke@example.com"})
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
    server.server_close()  # shutdown() stops the loop; this closes the listening socket


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
        ("GET", "/api/v1/auth/me"),
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


def test_no_chat_makes_no_llm_call(stub) -> None:
    base, api = stub
    result = run_smoke(base, "--no-chat", "--email", "smoke@example.com", "--password", "pw")
    assert result.returncode == 0, result.stderr
    assert [p for _, p, _, _ in api.seen][-1] == "/api/v1/auth/me"
    assert all(p != "/api/v1/chat" for _, p, _, _ in api.seen)
    assert "skip POST /api/v1/chat" in result.stdout


SMOKE_BUILDSPEC = SMOKE.parents[1] / "copilot" / "pipelines" / "wwhd-main" / "smoke-buildspec.yml"


@pytest.mark.parametrize("env,flag", [("dev", "--no-chat"), ("staging", ""), ("prod", "--no-chat")])
def test_pipeline_smoke_makes_the_paid_call_in_staging_only(env: str, flag: str) -> None:
    import yaml

    spec = yaml.safe_load(SMOKE_BUILDSPEC.read_text())
    commands = spec["phases"]["build"]["commands"]
    choose = next(c for c in commands if "SMOKE_CHAT_ENVS" in c)
    assert commands[-1] == 'python3 scripts/smoke $chat "https://$alias"'
    out = subprocess.run(
        ["bash", "-c", choose + '; printf %s "$chat"'],
        env={
            "PATH": "/usr/bin:/bin",
            "COPILOT_ENVIRONMENT_NAME": env,
            **spec["env"]["variables"],
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == flag


def test_smoke_against_the_real_app(tmp_path) -> None:
    """The real app on loopback (SQLite, in-memory Qdrant, offline provider), smoke user made by the CLI."""
    from werkzeug.serving import make_server

    from tests.conftest import close_app, make_app

    app = make_app(tmp_path)
    result = app.test_cli_runner().invoke(
        args=[
            "wwhd",
            "create-user",
            "smoke@example.com",
            "--username",
            "smoke",
            "--password",
            "smoke-password-1",
            "--role",
            "user",
        ]
    )
    assert result.exit_code == 0, result.output
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        creds = ["--email", "smoke@example.com", "--password", "smoke-password-1"]
        ok = run_smoke(base, *creds)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "ok   POST /api/v1/chat" in ok.stdout
        assert run_smoke(base, "--no-chat", *creds).returncode == 0
        bad = run_smoke(base, "--no-chat", "--email", "smoke@example.com", "--password", "nope1234")
        assert bad.returncode == 1 and "auth/login" in bad.stderr
    finally:
        server.shutdown()
        server.server_close()
        close_app(app)
