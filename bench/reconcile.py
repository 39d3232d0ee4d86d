"""Reconcile and reindex at 50k chunks: time, peak RSS and database temp bytes per step.

Each step runs in a fresh process so its peak RSS is its own: `reindex --all` (every point
rebuilt from SQL), `reconcile` (report, no drift), then `reconcile --repair` after 1,000 points
were deleted. Documents carry 200 KB of content each: the old join copied it into every chunk row.
Targets (issue 14): each step <= 60 s and <= 300 MB RSS, no temp file larger than one page.

    .venv/bin/python -m bench.reconcile                       # SQLite + embedded Qdrant on disk
    .venv/bin/python -m bench.reconcile --whole               # the folder loaded whole (before)
    .venv/bin/python -m bench.reconcile --database postgresql+psycopg://postgres@127.0.0.1/wwhd_x
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import ROOT, _status_kib, write_result

WORDS = "breathe save walk rest patience customer habit season orchard morning".split()


def config(tmp: Path, database: str) -> dict:
    return {
        "APP_ENV": "testing",
        "DATABASE_URL": database or f"sqlite:///{tmp / 'bench.db'}",
        "QDRANT_PATH": str(tmp / "qdrant"),
        "QDRANT_URL": "",
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
        "MODEL_EMBED": "",
        "UPLOAD_DIR": str(tmp / "uploads"),
    }


def build(cfg: dict, documents: int, per_document: int) -> None:
    """SQL rows only (bulk insert); the index is built by the measured reindex step."""
    from wwhd import create_app
    from wwhd.extensions import db
    from wwhd.knowledge.namespaces import seed_namespaces
    from wwhd.models import Chunk, Document

    app = create_app(cfg)
    with app.app_context():
        db.drop_all()
        db.create_all()
        seed_namespaces()
        db.session.commit()
        for d in range(documents):
            doc = Document(
                namespace="general",
                title=f"Talk {d}",
                content=("word " * 40_000),  # 200 KB, never needed by reconcile
                checksum=uuid.uuid4().hex * 2,
                status="indexed",
                chunk_count=per_document,
            )
            db.session.add(doc)
            db.session.flush()
            db.session.execute(
                Chunk.__table__.insert(),
                [
                    {
                        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{d}-{n}")),
                        "document_id": doc.id,
                        "index": n,
                        "text": " ".join(WORDS[(n + k) % len(WORDS)] for k in range(120)),
                        "start_s": float(n * 30),
                        "end_s": float(n * 30 + 30),
                    }
                    for n in range(per_document)
                ],
            )
            db.session.commit()
        db.engine.dispose()


def _pg_temp(cfg: dict) -> tuple[int, int] | None:
    url = cfg["DATABASE_URL"]
    if not url.startswith("postgresql"):
        return None
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("select pg_stat_force_next_flush()")
        row = conn.execute(
            "select temp_files, temp_bytes from pg_stat_database where datname = current_database()"
        ).fetchone()
        return int(row[0]), int(row[1])


def _plan(cfg: dict) -> str:
    """How the database runs one keyset page (a sort or temp B-tree would show here)."""
    from sqlalchemy import event

    from wwhd import create_app
    from wwhd.extensions import db
    from wwhd.knowledge.reconcile import chunk_pages

    app = create_app(cfg)
    with app.app_context():
        captured: list[tuple] = []

        def grab(conn, cursor, statement, parameters, context, executemany):
            captured.append((statement, parameters))

        event.listen(db.engine, "before_cursor_execute", grab)
        next(chunk_pages(page=1000))
        event.remove(db.engine, "before_cursor_execute", grab)
        statement, params = next(c for c in captured if "FROM chunks" in c[0])
        sqlite = cfg["DATABASE_URL"].startswith("sqlite")
        prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
        conn = db.session.connection().connection.driver_connection
        cur = conn.cursor()
        cur.execute(prefix + statement, params)
        rows = cur.fetchall()
        db.session.rollback()
        db.engine.dispose()
        return "\n".join(" ".join(str(c) for c in row) for row in rows)


def step(cfg: dict, name: str, whole: bool = False) -> dict:
    """One measured step in this process (called in a child), on the index the CLI commands use
    (`maintenance_index`: embedded Qdrant read and written a page at a time), or with `whole` on
    the app's own (embedded Qdrant loads every point into memory, as a server does)."""
    from wwhd import create_app
    from wwhd.deps import get_deps, maintenance_index
    from wwhd.extensions import db
    from wwhd.knowledge import reconcile

    app = create_app(cfg)
    before = _pg_temp(cfg)
    started = time.perf_counter()
    with app.app_context(), maintenance_index(app) if not whole else _whole(app) as index:
        index.ensure()
        opened_rss = _status_kib(os.getpid(), "VmRSS") / 1024
        opened_at = time.perf_counter()
        if name == "reindex":
            result = reconcile.reindex(index)
            out = {"chunks": result["chunks"], "orphans_deleted": result["orphans_deleted"]}
        elif name == "report":
            drift = reconcile.report(index)
            out = {"points": drift.points, "chunks": drift.chunks, "drift": drift.total}
        elif name == "damage":
            ids = [pid for pid, _ in next(index.scroll_pages(1000))]
            index.delete_points(ids)
            out = {"deleted": len(ids)}
        elif name == "repair":
            drift = reconcile.repair(index)
            out = {"missing_repaired": drift.missing, "drift": drift.total}
        elif name == "check":
            health = reconcile.check(index)
            out = {"documents": health.documents, "behind": len(health.behind)}
        else:
            raise SystemExit(f"unknown step {name}")
        db.session.remove()
    seconds = time.perf_counter() - started
    work_seconds = time.perf_counter() - opened_at
    after = _pg_temp(cfg)
    if whole:
        get_deps(app).index.client.close()
    out.update(
        step=name,
        seconds=round(seconds, 2),
        work_seconds=round(work_seconds, 2),
        rss_index_open_mb=round(opened_rss, 1),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
    if before and after:
        out.update(temp_files=after[0] - before[0], temp_bytes=after[1] - before[1])
    return out


@contextlib.contextmanager
def _whole(app):
    from wwhd.deps import get_deps

    yield get_deps(app).index


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="", help="SQLAlchemy URL; default a SQLite file")
    parser.add_argument("--documents", type=int, default=50)
    parser.add_argument("--per-document", type=int, default=1000)
    parser.add_argument(
        "--whole",
        action="store_true",
        help="embedded Qdrant loaded whole, as a server opens it (before 2026-12-08, the CLI too)",
    )
    parser.add_argument("--tmp", default="", help=argparse.SUPPRESS)
    parser.add_argument("--step", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:  # the child
        print(json.dumps(step(config(Path(args.tmp), args.database), args.step, args.whole)))
        return {}
    with tempfile.TemporaryDirectory(prefix="wwhd-reconcile-") as tmp:
        cfg = config(Path(tmp), args.database)
        started = time.perf_counter()
        build(cfg, args.documents, args.per_document)
        print(
            f"built {args.documents * args.per_document} chunk rows in "
            f"{time.perf_counter() - started:.1f} s"
        )
        plan = _plan(cfg)
        print("keyset page plan:\n  " + plan.replace("\n", "\n  "))
        steps = []
        for name in ("reindex", "report", "check", "damage", "repair", "report"):
            child = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.reconcile",
                    "--step",
                    name,
                    "--tmp",
                    tmp,
                    "--database",
                    args.database,
                    *(["--whole"] if args.whole else []),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=900,
            )
            if child.returncode != 0:
                raise RuntimeError(f"step {name} failed:\n{child.stdout}\n{child.stderr}")
            line = [ln for ln in child.stdout.splitlines() if ln.startswith('{"')][-1]
            steps.append(json.loads(line))
            print(json.dumps(steps[-1]))
    data = {
        "database": "postgresql" if args.database.startswith("postgresql") else "sqlite",
        "chunks": args.documents * args.per_document,
        "index": "whole" if args.whole else "paged",
        "page_plan": plan,
        "steps": steps,
    }
    print(f"results: {write_result('reconcile-' + data['database'], data)}")
    return data


if __name__ == "__main__":
    main()
