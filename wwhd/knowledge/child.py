"""Running wwhd/knowledge/prepare.py in a short-lived child process, and when to.

gevent's subprocess (once patched) waits for the child cooperatively, so the serving worker's
loop keeps running; the child reports through files in a work folder (prepare.py's docstring).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..offload import gevent_active
from .parsers import ParseError

CHILD_TIMEOUT_S = 1800
# The child loads only what prepare.py imports. `-m wwhd.knowledge.prepare` first ran
# wwhd/__init__.py (Flask, SQLAlchemy, the models, the API): ~0.8 CPU s and 1.4-1.7 s of wall time
# per child at load 4, two children per upload. `wwhd` and `wwhd.providers` are registered as
# packages without running their __init__; the BLAS thread setting that wwhd/__init__.py makes is
# in the environment the child inherits.
LEAN_PACKAGES = (
    "import importlib.util, sys\n"
    "for name in ('wwhd', 'wwhd.providers'):\n"
    "    sys.modules[name] = importlib.util.module_from_spec(importlib.util.find_spec(name))\n"
)
CHILD_COMMAND = [  # after sys.executable; then the arguments
    "-c",
    LEAN_PACKAGES + "from wwhd.knowledge.prepare import main\nsys.exit(main(sys.argv[1:]))\n",
]
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding `wwhd/`


class PrepareFailed(RuntimeError):
    """The child process died or reported an unexpected error (the type is in the message)."""


def use_child(setting: str) -> bool:
    """INGEST_IN_CHILD: "auto" (a child process under gunicorn's gevent worker only), "always",
    "never"."""
    if setting == "always":
        return True
    if setting == "never":
        return False
    return gevent_active()


def run(args: list[str], out: Path) -> dict:
    """Run prepare.py with `args` (its last one is `out`); the child's result.json. Raises
    ParseError as the child reported it, PrepareFailed when it crashed or failed otherwise."""
    root = os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
    with open(out / "child.log", "wb") as errors:
        code = subprocess.call(
            [sys.executable, *CHILD_COMMAND, *args],
            stdin=subprocess.DEVNULL,
            stdout=errors,
            stderr=errors,
            env={**os.environ, "PYTHONPATH": root},
            timeout=CHILD_TIMEOUT_S,
        )
    error_path = out / "error.json"
    if error_path.exists():
        error = json.loads(error_path.read_text())
        if error["type"] == "ParseError":
            raise ParseError(error["message"], error.get("code") or "malformed")
        raise PrepareFailed(f"preparing the chunks failed ({error['type']})")
    if code != 0 or not (out / "result.json").exists():
        raise PrepareFailed(f"the indexing child process exited with status {code}")
    return json.loads((out / "result.json").read_text())
