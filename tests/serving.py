"""A real server for tests: `flask` commands and gunicorn (the serving config of `make dev` and the
image) as subprocesses on a free loopback port, with settings only from what the test passes."""

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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Settings a developer's shell (or CI) may hold; removed so only the test's own settings apply.
_APP_PREFIXES = ("WWHD_", "QDRANT_", "OPENAI_", "MODEL_", "DATABASE_", "DB_", "FLASK_", "JWT_")
_APP_NAMES = {"APP_ENV", "APP_VERSION", "HOST", "PORT", "DATA_DIR", "UPLOAD_DIR", "REDIS_URL"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**settings: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_APP_PREFIXES) and k not in _APP_NAMES
    }
    env["PYTHONPATH"] = str(ROOT)  # `wsgi` importable from any working directory
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def flask(env: dict, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / "flask"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"flask {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def get_json(url: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        with exc:  # closes the response's socket
            return exc.code, json.loads(exc.read() or b"{}")


class Gunicorn:
    """`gunicorn -c gunicorn.conf.py wsgi:app` in `cwd`; `with` waits for /health, then SIGTERMs it."""

    def __init__(self, env: dict, cwd: Path, port: int, log: Path):
        self.env, self.cwd, self.port, self.log = env, cwd, port, log
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_healthy(90)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_healthy(self, deadline_s: float) -> None:
        # Polls an observable condition of another process, bounded by a deadline.
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"no /health on {self.base} within {deadline_s} s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the master stops its workers
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()
