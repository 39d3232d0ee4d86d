"""The qdrant-snapshot Scheduled Job: its manifest and image, and scripts/qdrant_snapshot.py against a fake Qdrant."""

import importlib.util
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import jsonschema
import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ROOT = Path(__file__).resolve().parents[2]
JOB = ROOT / "copilot" / "qdrant-snapshot" / "manifest.yml"
SCRIPT = ROOT / "scripts" / "qdrant_snapshot.py"
API_KEY = "test-qdrant-key-0123456789"
ALIAS = "wwhd_chunks"
LIVE = "wwhd_chunks__text-embedding-3-small-1536"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Shared helpers from the main deployment tests (loaded by path, like copilot_schema.py).
deploy = _load("wwhd_deploy_test_copilot", Path(__file__).with_name("test_copilot.py"))
snapshot = _load("wwhd_qdrant_snapshot", SCRIPT)


# --- manifest and image ----------------------------------------------------------


def test_job_manifest_is_collected_and_validates() -> None:
    assert JOB in deploy.manifest_files()
    doc = deploy.load(JOB)
    assert deploy.kind_of(JOB, doc) == "Scheduled Job"
    deploy.validate(doc, "Scheduled Job")


def _rename(doc: dict, dotted: str, new: str) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        doc = doc[key]
    doc[new] = doc.pop(last)


def _set(doc: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        doc = doc.setdefault(key, {})
    doc[last] = value


JOB_MUTATIONS = {
    "schedul": lambda d: _rename(d, "on.schedule", "schedul"),
    "schedule-prose": lambda d: _set(d, "on.schedule", "every 6 hours"),
    "retry": lambda d: _rename(d, "retries", "retry"),
    "timeout-prose": lambda d: _set(d, "timeout", "1 hour"),
    "docker_file": lambda d: _rename(d, "image.build.dockerfile", "docker_file"),
    "no-on": lambda d: d.pop("on"),
    # Service fields a job does not have: Copilot would ignore them silently.
    "network.connect": lambda d: _set(d, "network.connect", True),
    "count": lambda d: _set(d, "count", 2),
    "prod-retention-42": lambda d: _set(d, "environments.prod.logging.retention", 42),
    "prod-varibles": lambda d: _set(d, "environments.prod.varibles", {"KEEP": "4"}),
}


@pytest.mark.parametrize("mutate", JOB_MUTATIONS.values(), ids=JOB_MUTATIONS.keys())
def test_mutated_job_manifest_fails_validation(mutate) -> None:
    doc = deploy.load(JOB)
    deploy.validate(doc, "Scheduled Job")
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):
        deploy.validate(doc, "Scheduled Job")


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([hms])", duration))


def test_job_matches_qdrant_service_and_app() -> None:
    job, qdrant = deploy.load(JOB), deploy.load(deploy.QDRANT)
    assert set(deploy.INTERPOLATION.findall(JOB.read_text())) <= {
        "COPILOT_APPLICATION_NAME",
        "COPILOT_ENVIRONMENT_NAME",
    }
    for env in deploy.ENVS:
        cfg, svc = deploy.for_env(job, env), deploy.for_env(qdrant, env)
        assert cfg["memory"] in deploy.FARGATE_MEMORY[cfg["cpu"]], env
        # The same SSM parameter Qdrant takes its key from.
        assert cfg["secrets"]["QDRANT_API_KEY"] == svc["secrets"]["QDRANT__SERVICE__API_KEY"], env
        # A plain task cannot use Service Connect: the script builds the service-discovery name.
        assert "QDRANT_URL" not in cfg["variables"]
        endpoint = f"{env}.{deploy.APP}.local"
        url = snapshot.settings({"COPILOT_SERVICE_DISCOVERY_ENDPOINT": endpoint})["url"]
        assert url == f"http://{qdrant['name']}.{endpoint}:{svc['image']['port']}"
        # The slowest snapshot call must end before Copilot stops the task.
        assert float(cfg["variables"]["QDRANT_SNAPSHOT_TIMEOUT_S"]) < _seconds(cfg["timeout"])
        assert int(cfg["variables"]["KEEP"]) >= 1
    # Full snapshots land at the root of the EFS snapshots path, which the qdrant task restores from.
    command = " ".join(qdrant["command"])
    snapshots_path = qdrant["variables"]["QDRANT__STORAGE__SNAPSHOTS_PATH"]
    assert f"{snapshots_path}/*.snapshot" in command and "--storage-snapshot" in command


def test_job_alias_is_the_apps_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QDRANT_COLLECTION", raising=False)
    from wwhd.config import Config

    assert deploy.load(JOB)["variables"]["QDRANT_COLLECTION"] == Config().QDRANT_COLLECTION


def test_job_image_builds_from_the_script_and_passes_hadolint() -> None:
    build = deploy.load(JOB)["image"]["build"]
    assert build["context"] == "."
    dockerfile = ROOT / build["dockerfile"]
    text = dockerfile.read_text()
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    assert re.fullmatch(r"public\.ecr\.aws/docker/library/python:3\.11\.\d+-slim(-\w+)?", base), (
        base
    )
    assert "COPY scripts/qdrant_snapshot.py " in text
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M)
    assert "qdrant_snapshot.py" in re.search(r"^ENTRYPOINT .*$", text, re.M).group(0)
    # The repository's .dockerignore must not hide the script from the build context.
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "scripts" not in ignored and "scripts/qdrant_snapshot.py" not in ignored
    hadolint = deploy.VENV_BIN / "hadolint"
    if not hadolint.exists():
        hadolint = Path(shutil.which("hadolint") or "hadolint")
    result = subprocess.run(
        [str(hadolint), str(dockerfile)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the script against a fake Qdrant --------------------------------------------


class FakeQdrant:
    """Just enough of Qdrant's REST API; records every call."""

    def __init__(self) -> None:
        self.aliases = {ALIAS: LIVE}
        self.points = {LIVE: 120, "wwhd_chunks__bm25": 0}
        self.snapshots: list[dict] = []
        self.calls: list[tuple[str, str, str | None]] = []
        self.fail: dict[tuple[str, str], int] = {}  # (method, path prefix) -> status
        self.hang = threading.Event()  # set: POST /snapshots blocks until released
        self.release = threading.Event()
        self._clock = 0

    def add_snapshot(self) -> dict:
        self._clock += 1
        stamp = f"2026-01-01T00:{self._clock // 60:02d}:{self._clock % 60:02d}"
        snap = {
            "name": f"full-snapshot-{stamp.replace('T', '-').replace(':', '-')}.snapshot",
            "creation_time": stamp,
            "size": 1000 + self._clock,
            "checksum": "x",
        }
        self.snapshots.append(snap)
        return snap

    def names(self) -> list[str]:
        return [s["name"] for s in self.snapshots]

    @Request.application
    def __call__(self, request: Request) -> Response:
        path = request.path
        self.calls.append(
            (request.method, request.full_path.rstrip("?"), request.headers.get("api-key"))
        )

        def reply(result, status: int = 200) -> Response:
            return Response(
                json.dumps({"result": result, "status": "ok", "time": 0.001}),
                status,
                content_type="application/json",
            )

        if request.headers.get("api-key") != API_KEY:
            return Response(
                json.dumps({"status": {"error": "Invalid api-key"}}),
                401,
                content_type="application/json",
            )
        for (method, prefix), status in self.fail.items():
            if request.method == method and path.startswith(prefix):
                return Response(
                    json.dumps({"status": {"error": "Service internal error"}}),
                    status,
                    content_type="application/json",
                )
        if request.method == "GET" and path == "/aliases":
            return reply(
                {
                    "aliases": [
                        {"alias_name": a, "collection_name": c} for a, c in self.aliases.items()
                    ]
                }
            )
        if request.method == "GET" and path.startswith("/collections/"):
            name = path.split("/", 2)[2]
            if name not in self.points:
                return reply(None, 404)
            return reply({"status": "green", "points_count": self.points[name]})
        if request.method == "POST" and path == "/snapshots":
            if self.hang.is_set():
                self.release.wait(timeout=30)
            return reply(self.add_snapshot())
        if request.method == "GET" and path == "/snapshots":
            return reply(list(self.snapshots))
        if request.method == "DELETE" and path.startswith("/snapshots/"):
            name = path.split("/", 2)[2]
            if name not in self.names():
                return reply(None, 404)
            self.snapshots = [s for s in self.snapshots if s["name"] != name]
            return reply(True)
        return reply(None, 404)


@pytest.fixture
def qdrant():
    fake = FakeQdrant()
    server = make_server("127.0.0.1", 0, fake, threaded=True)
    # A short poll interval only makes shutdown() return sooner.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_port}"
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def env_for(fake: FakeQdrant, **extra: str) -> dict:
    return {
        "QDRANT_URL": fake.url,
        "QDRANT_API_KEY": API_KEY,
        "QDRANT_COLLECTION": ALIAS,
        "KEEP": "3",
        **extra,
    }


def events(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_creates_a_snapshot_and_prunes_beyond_keep(qdrant: FakeQdrant) -> None:
    old = [qdrant.add_snapshot()["name"] for _ in range(5)]
    # The real entry point, as the job's image runs it.
    result = subprocess.run(
        [sys.executable, str(SCRIPT)],
        env=env_for(qdrant),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    created = [c for c in qdrant.calls if c[0] == "POST"]
    assert created == [("POST", "/snapshots?wait=true", API_KEY)]
    new = qdrant.snapshots[-1]["name"]
    assert qdrant.names() == [old[3], old[4], new], "the newest KEEP=3 stay"
    deleted = [c[1] for c in qdrant.calls if c[0] == "DELETE"]
    assert deleted == [f"/snapshots/{n}?wait=true" for n in (old[2], old[1], old[0])]
    assert all(c[2] == API_KEY for c in qdrant.calls)
    done = events(result.stdout)[-1]
    assert done["event"] == "snapshot_done" and done["created"] == new
    assert API_KEY not in result.stdout + result.stderr


def test_resolves_the_alias_and_checks_that_collection(qdrant: FakeQdrant, capsys) -> None:
    assert snapshot.main(env_for(qdrant)) == 0
    paths = [c[1] for c in qdrant.calls]
    assert paths[:3] == ["/aliases", f"/collections/{LIVE}", "/snapshots?wait=true"]
    checked = next(e for e in events(capsys.readouterr().out) if e["event"] == "index_checked")
    assert checked == {**checked, "alias": ALIAS, "collection": LIVE, "points": 120}
    assert len(qdrant.snapshots) == 1, "nothing to prune below KEEP"


@pytest.mark.parametrize("state", ["alias-missing", "collection-empty"])
def test_refuses_to_snapshot_an_empty_index(qdrant: FakeQdrant, capsys, state: str) -> None:
    # After a failed restore Qdrant starts empty; snapshotting that would prune every good snapshot.
    kept = [qdrant.add_snapshot()["name"] for _ in range(4)]
    if state == "alias-missing":
        qdrant.aliases.clear()
    else:
        qdrant.points[LIVE] = 0
    assert snapshot.main(env_for(qdrant)) == 1
    assert not [c for c in qdrant.calls if c[0] in ("POST", "DELETE")]
    assert qdrant.names() == kept
    failed = events(capsys.readouterr().out)[-1]
    assert failed["event"] == "snapshot_failed" and "reindex" in failed["error"]


@pytest.mark.parametrize(
    "method,prefix",
    [("POST", "/snapshots"), ("GET", "/aliases"), ("GET", "/snapshots"), ("DELETE", "/snapshots/")],
)
def test_fails_loudly_on_http_500(qdrant: FakeQdrant, capsys, method: str, prefix: str) -> None:
    for _ in range(4):
        qdrant.add_snapshot()
    qdrant.fail[(method, prefix)] = 500
    assert snapshot.main(env_for(qdrant)) == 1
    failed = events(capsys.readouterr().out)[-1]
    assert failed["event"] == "snapshot_failed"
    assert "HTTP 500" in failed["error"] and method in failed["error"]
    if method == "POST":
        assert not [c for c in qdrant.calls if c[0] == "DELETE"], (
            "no pruning without a new snapshot"
        )


def test_wrong_api_key_fails(qdrant: FakeQdrant, capsys) -> None:
    assert snapshot.main(env_for(qdrant, QDRANT_API_KEY="wrong")) == 1
    out = capsys.readouterr().out
    assert "HTTP 401" in out and "wrong" not in out.replace("HTTP 401", "")


def test_a_hung_snapshot_call_times_out(qdrant: FakeQdrant, capsys) -> None:
    qdrant.hang.set()
    assert snapshot.main(env_for(qdrant, QDRANT_SNAPSHOT_TIMEOUT_S="0.5")) == 1
    assert "timed out" in events(capsys.readouterr().out)[-1]["error"]


def test_unreachable_qdrant_fails() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        "QDRANT_URL": f"http://127.0.0.1:{port}",
        "QDRANT_API_KEY": API_KEY,
        "QDRANT_TIMEOUT_S": "2",
    }
    assert snapshot.main(env) == 1


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"QDRANT_URL": "http://x:6333", "KEEP": "0"},
        {"QDRANT_URL": "http://x:6333", "KEEP": "many"},
    ],
    ids=["no-url", "keep-0", "keep-nan"],
)
def test_bad_settings_exit_2(env: dict) -> None:
    assert snapshot.main(env) == 2
