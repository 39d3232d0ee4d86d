"""The qdrant service's start command and container health check, run with bash.

Issue 12 item 2: Qdrant restores a full snapshot (`--storage-snapshot`) before its HTTP server
starts, and ECS caps a health check's startPeriod at 300 s, so a probe that waits for HTTP kills a
long restore and the task loops forever. The manifest's command writes a restore marker and its
health check counts the task healthy while the marker is younger than QDRANT_RESTORE_MAX_S.

These tests run the exact strings from copilot/qdrant/manifest.yml with bash. The Qdrant binary
is not available here, so `./qdrant` is a small stand-in (below) that prints its arguments, waits
for the test to say "restore finished", then answers GET /readyz over real loopback HTTP. Only the
paths and the port are rewritten, to a temp folder and a free port.
"""

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "copilot" / "qdrant" / "manifest.yml").read_text())

STAND_IN = textwrap.dedent(
    """\
    #!{python}
    import http.server, socket, sys
    print("qdrant-stand-in args=" + " ".join(sys.argv[1:]), flush=True)
    if "--storage-snapshot" in sys.argv:
        sys.stdin.readline()  # the test writes a line when the "restore" is done
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/readyz" else 404)
            self.end_headers()
            self.wfile.write(b"all shards are ready")
        def log_message(self, *a):
            pass
    server = http.server.HTTPServer(("127.0.0.1", {port}), H)
    print("qdrant-stand-in listening", flush=True)
    server.serve_forever()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Qdrant:
    """The manifest's command and probe, pointed at a temp folder and a free port."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.port = tmp, _free_port()
        self.snapshots = tmp / "snapshots"
        self.snapshots.mkdir()
        self.marker = tmp / "qdrant-restoring"
        binary = tmp / "qdrant"
        binary.write_text(STAND_IN.format(python=sys.executable, port=self.port))
        binary.chmod(0o755)
        self.proc: subprocess.Popen | None = None

    def _rewrite(self, script: str) -> str:
        assert "/qdrant/snapshots" in script or "6333" in script
        return (
            script.replace("/qdrant/snapshots", str(self.snapshots))
            .replace("/tmp/qdrant-restoring", str(self.marker))
            .replace("6333", str(self.port))
        )

    def env(self, **extra: str) -> dict:
        env = {k: str(v) for k, v in MANIFEST["variables"].items()}
        return {"PATH": os.environ["PATH"], **env, **extra}

    def start(self, **env: str) -> str:
        """Run the manifest's entrypoint + command; return the stand-in's argument line."""
        entry = MANIFEST["entrypoint"]
        assert entry == ["/bin/bash", "-c"]
        self.proc = subprocess.Popen(
            [*entry, self._rewrite(MANIFEST["command"][0])],
            cwd=self.tmp,
            env=self.env(**env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        return self.read_until("qdrant-stand-in args=")

    def read_until(self, prefix: str) -> str:
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise AssertionError(f"qdrant command exited before printing {prefix!r}")

    def finish_restore(self) -> None:
        self.proc.stdin.write("done\n")
        self.proc.stdin.flush()
        self.read_until("qdrant-stand-in listening")

    def probe(self, **env: str) -> int:
        hc = MANIFEST["image"]["healthcheck"]["command"]
        assert hc[:3] == ["CMD", "bash", "-c"]
        return subprocess.run(
            ["bash", "-c", self._rewrite(hc[3])],
            env=self.env(**env),
            capture_output=True,
            timeout=30,
        ).returncode

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def qdrant(tmp_path):
    q = Qdrant(tmp_path)
    yield q
    q.stop()


def test_restore_is_healthy_while_http_is_down_then_only_readyz_counts(qdrant) -> None:
    older, newer = qdrant.snapshots / "old.snapshot", qdrant.snapshots / "new.snapshot"
    older.write_text("x")
    newer.write_text("y")
    os.utime(older, (time.time() - 3600, time.time() - 3600))
    assert qdrant.start() == f"--storage-snapshot {newer}"
    # Restoring: nothing listens on the port, yet the probe passes because of the marker.
    assert qdrant.marker.is_file()
    assert qdrant.probe() == 0
    qdrant.finish_restore()
    assert qdrant.probe() == 0
    assert not qdrant.marker.exists(), "the first 200 from /readyz removes the marker"
    qdrant.stop()
    assert qdrant.probe() != 0, "after the restore only /readyz counts"


def test_restore_that_outlives_the_limit_turns_unhealthy(qdrant) -> None:
    (qdrant.snapshots / "a.snapshot").write_text("x")
    qdrant.start()
    assert qdrant.probe() == 0
    assert qdrant.probe(QDRANT_RESTORE_MAX_S="0") != 0
    qdrant.marker.write_text(str(int(time.time()) - 7200))
    assert qdrant.probe() != 0, "a restore older than QDRANT_RESTORE_MAX_S (3600) is a hang"


def test_no_snapshot_or_restore_off_starts_empty_and_needs_readyz(qdrant) -> None:
    qdrant.marker.write_text(str(int(time.time())))  # left over from an earlier start
    assert qdrant.start() == ""
    assert not qdrant.marker.exists()
    qdrant.read_until("qdrant-stand-in listening")
    assert qdrant.probe() == 0
    qdrant.stop()
    assert qdrant.probe() != 0


def test_restore_off_skips_a_bad_snapshot(qdrant) -> None:
    (qdrant.snapshots / "bad.snapshot").write_text("x")
    assert qdrant.start(QDRANT_RESTORE="off") == ""
    assert not qdrant.marker.exists()


def test_manifest_limits_fit_ecs() -> None:
    # ECS HealthCheck: startPeriod 0-300 s, interval 5-300 s, timeout 2-60 s, retries 1-10
    # (Amazon ECS API Reference, HealthCheck data type). The restore window is therefore
    # QDRANT_RESTORE_MAX_S, not start_period.
    hc = MANIFEST["image"]["healthcheck"]
    assert int(hc["start_period"].rstrip("s")) <= 300
    assert int(MANIFEST["variables"]["QDRANT_RESTORE_MAX_S"]) > 300
    assert "QDRANT_RESTORE_MAX_S" in hc["command"][3]
