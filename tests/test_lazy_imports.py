"""The app factory and the CLI import none of the heavy modules (wwhd/lazy.py): `flask wwhd` starts fast."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wwhd.lazy import HEAVY_MODULES

ROOT = Path(__file__).resolve().parents[1]

# Built inside a click context, as every `flask` command builds it. A serving process (gunicorn,
# no click context) starts the job runner in create_app, which opens the index: that is the
# server's start-up cost, not a command's.
PROBE = """
import sys
import click
with click.Context(click.Command("probe")):
    import wsgi  # create_app(), as every `flask` command does
import wwhd.cli
from wwhd.lazy import HEAVY_MODULES
print(",".join(m for m in HEAVY_MODULES if m in sys.modules))
"""


def _run(tmp_path, code: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QDRANT_", "OPENAI_"))}
    env.update(APP_ENV="dev", DATA_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path}/w.db")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_building_the_app_imports_no_heavy_module(tmp_path):
    assert _run(tmp_path, PROBE) == ""


def test_the_probe_sees_heavy_modules_once_they_are_used(tmp_path):
    # The same check fails when something does import them: here, building the dependencies.
    used = _run(
        tmp_path,
        PROBE.replace("import wwhd.cli", "from wwhd.deps import get_deps; get_deps(wsgi.app)"),
    )
    assert {"qdrant_client", "langgraph"} <= set(used.split(","))
    assert set(used.split(",")) <= set(HEAVY_MODULES)


@pytest.mark.slow  # 13 s: `flask db upgrade` in a subprocess
def test_flask_db_still_migrates(tmp_path):
    # `flask db` is listed without importing alembic and loads Flask-Migrate when it runs.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QDRANT_", "OPENAI_"))}
    env.update(
        APP_ENV="dev",
        FLASK_APP="wsgi",
        DATA_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path}/w.db",
    )
    flask = str(Path(sys.executable).parent / "flask")
    listed = subprocess.run([flask, "--help"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert "Perform database migrations" in listed.stdout, listed.stderr
    for args in (["db", "upgrade"], ["db", "current"]):
        proc = subprocess.run(
            [flask, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
    assert "(head)" in proc.stdout
