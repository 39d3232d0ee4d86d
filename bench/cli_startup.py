"""How long the command line takes to start: `flask wwhd --help` and `import wsgi`, as subprocesses.

Not a test (no pass/fail): prints min / median / max of N runs and which heavy modules (wwhd/lazy.py)
the app factory imported. Each run is a fresh interpreter, like a real `flask wwhd …` call.

    .venv/bin/python -m bench.cli_startup [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

PROBE = (
    "import sys, wsgi; from wwhd.lazy import HEAVY_MODULES; "
    "print(','.join(m for m in HEAVY_MODULES if m in sys.modules) or '-')"
)


def _env(tmp: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QDRANT_", "OPENAI_"))}
    env.update(
        APP_ENV="dev", DATA_DIR=tmp, DATABASE_URL=f"sqlite:///{tmp}/wwhd.db", FLASK_APP="wsgi"
    )
    return env


def _time(cmd: list[str], env: dict[str, str], runs: int) -> tuple[list[float], str]:
    times, out = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - start)
        out = proc.stdout.strip()
    return times, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wwhd-cli-bench-") as tmp:
        env = _env(tmp)
        cases = {
            "python -c pass (interpreter floor)": [sys.executable, "-c", "pass"],
            "python -c 'import flask, sqlalchemy' (framework floor)": [
                sys.executable,
                "-c",
                "import flask, flask_sqlalchemy, sqlalchemy.orm",
            ],
            "flask limiter --help (flask + its plugins, no app)": [
                str(BIN / "flask"),
                "limiter",
                "--help",
            ],
            "import wsgi (create_app)": [sys.executable, "-c", PROBE],
            "flask wwhd --help": [str(BIN / "flask"), "wwhd", "--help"],
        }
        print(
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, {args.runs} runs each"
        )
        for label, cmd in cases.items():
            times, out = _time(cmd, env, args.runs)
            print(
                f"  {label:58s} min {min(times):.3f} s  median {statistics.median(times):.3f} s"
                f"  max {max(times):.3f} s"
            )
            if cmd[-1] == PROBE:
                print(f"    heavy modules imported by create_app: {out}")


if __name__ == "__main__":
    main()
