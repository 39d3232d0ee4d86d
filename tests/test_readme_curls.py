"""README's curl blocks, pasted as they are into bash against a real `make dev`-like server.

Every `bash` block of README.md that calls curl runs in one shell, in order, under `set -euo pipefail`
(an undefined variable or a failed step stops it) with curl failing on any HTTP error. The server is
what `make dev` starts: migrations, samples, demo users, gunicorn with APP_ENV=dev, here on a free
port and a temp data dir. This keeps the README's commands true.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.serving import ROOT, Gunicorn, clean_env, flask, free_port

PRELUDE = """set -euo pipefail
curl() { command curl --fail-with-body --show-error --max-time 60 "$@"; echo; }
"""


def readme_curl_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)
    return [block for block in blocks if re.search(r"^\s*[^#\s].*\bcurl ", block, flags=re.M)]


def test_readme_has_the_curl_blocks_this_test_runs():
    blocks = readme_curl_blocks()
    assert len(blocks) >= 2, "the quick-start and the upload block"
    joined = "\n".join(blocks)
    for needle in ("$TOKEN", "$ADMIN_TOKEN", "$CHAT_ID", "documents/upload", "chat/stream"):
        assert needle in joined
    assert "8000/" not in joined, "the port comes from $PORT"
    for path in re.findall(r"file=@(\S+)", joined):
        assert (ROOT / path).is_file(), f"README uploads {path}, which is not in the repository"


MAKE_DEV_STEPS = (["db", "upgrade"], ["wwhd", "load-samples"], ["wwhd", "ensure-demo-user"])


def test_the_server_below_is_what_make_dev_starts():
    recipe = (ROOT / "Makefile").read_text().split("\ndev:", 1)[1].split("\n\n", 1)[0]
    for args in MAKE_DEV_STEPS:
        assert f"APP_ENV=dev $(BIN)/flask {' '.join(args)}" in recipe
    assert (
        "APP_ENV=dev HOST=$(HOST) PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app"
        in recipe
    )


@pytest.mark.slow  # 27 s: make dev's server and every README curl
def test_readme_curls_run_against_a_make_dev_server(tmp_path):
    port = free_port()
    env = clean_env(
        APP_ENV="dev",
        FLASK_APP="wsgi",
        HOST="127.0.0.1",
        PORT=str(port),
        DATA_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'wwhd.db'}",
        QDRANT_PATH=str(tmp_path / "qdrant"),
        UPLOAD_DIR=str(tmp_path / "uploads"),
        FLASK_SKIP_DOTENV="1",  # a developer's own .env must not change what is tested
    )
    for args in MAKE_DEV_STEPS:
        flask(env, *args)  # what `make dev` runs before serving

    script = PRELUDE + "\n".join(readme_curl_blocks())
    with Gunicorn(env, ROOT, port, tmp_path / "gunicorn.log") as server:
        shell = subprocess.run(
            ["bash", "-c", script],
            cwd=ROOT,  # README says: at the repository root
            env={**env, "PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert shell.returncode == 0, f"{shell.stdout[-3000:]}\n{shell.stderr}\n{server.tail()}"

    out = shell.stdout
    # both streamed answers finished, and the resumed one (events after id 3) ends with done too
    assert out.count("event: done") == 3, out[-2000:]
    assert "id: 4\nevent: " in out and out.count("id: 1\nevent: start") == 2
    assert "event: citation" in out
    objects = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    follow_up = [o for o in objects if o.get("status") == "complete" and "chat_id" in o]
    assert follow_up and follow_up[-1]["content"], objects  # the follow-up in CHAT_ID's chat
    chat = next(o for o in objects if "messages" in o)
    assert chat["id"] == follow_up[-1]["chat_id"] and len(chat["messages"]) == 4
    document = objects[-1]
    assert document["namespace"] == "meditation"
    assert document["status"] in ("pending", "processing", "indexed"), document
