"""Ingestion throughput: MB/s of transcript text through parse → chunk → SQL → Qdrant, offline provider."""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from bench.common import write_result

WORDS = (
    "breathe slowly and keep the shoulders soft while the mind settles into the body "
    "save a little every week before you spend anything on the things you do not need "
    "the customer remembers how you treated them long after they forget the price"
).split()


def transcript(megabytes: float, seed: int = 7) -> bytes:
    """A WebVTT transcript of about `megabytes` MB: one cue every 4 s with 8-16 words."""
    rng = random.Random(seed)
    out = ["WEBVTT", ""]
    size, t = 0, 0
    while size < megabytes * 1024 * 1024:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))) + "."
        stamp = lambda s: f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}.000"  # noqa: E731
        block = f"{stamp(t)} --> {stamp(t + 4)}\n{text}\n"
        out.append(block)
        size += len(block) + 1
        t += 4
    return "\n".join(out).encode()


def measure(sizes_mb: list[float], qdrant: str = "memory") -> dict:
    """`qdrant`: "memory" (the pipeline's own cost), "disk" (embedded local mode, which commits
    each point to its SQLite file separately) or a server URL."""
    from wwhd import create_app
    from wwhd.deps import get_runner
    from wwhd.extensions import db
    from wwhd.knowledge.files import get_file_store
    from wwhd.knowledge.ingest import add_source
    from wwhd.knowledge.namespaces import seed_namespaces
    from wwhd.models import Document

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "APP_ENV": "testing",
                "DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.db'}",
                "QDRANT_PATH": ":memory:" if qdrant == "memory" else str(Path(tmp) / "qdrant"),
                "QDRANT_URL": qdrant if qdrant.startswith("http") else "",
                "OPENAI_API_KEY": "",
                "OPENAI_BASE_URL": "",
                "MODEL_EMBED": "",
                "UPLOAD_DIR": str(Path(tmp) / "uploads"),
            }
        )
        with app.app_context():
            db.create_all()
            seed_namespaces()
            db.session.commit()
        for n, mb in enumerate(sizes_mb):
            data = transcript(mb, seed=n)
            with app.app_context():
                started = time.perf_counter()
                result = add_source(
                    "general",
                    data=data,
                    filename=f"talk{n}.vtt",
                    store=get_file_store(app),
                    max_bytes=len(data),
                )
                db.session.commit()
                accepted = time.perf_counter() - started
                document_id = result.document.id
            status = get_runner(app).run(document_id)
            total = time.perf_counter() - started
            with app.app_context():
                doc = db.session.get(Document, document_id)
                text_mb = len(doc.content.encode()) / 1048576
                runs.append(
                    {
                        "file_mb": round(len(data) / 1048576, 2),
                        "text_mb": round(text_mb, 2),
                        "status": status,
                        "chunks": doc.chunk_count,
                        "upload_s": round(accepted, 2),
                        "total_s": round(total, 2),
                        "mb_per_s": round(text_mb / total, 2),
                    }
                )
    return {"qdrant": qdrant, "runs": runs}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes", default="1,5,9.5", help="Transcript sizes in MB, comma-separated."
    )
    parser.add_argument("--qdrant", default="memory", help="memory | disk | http://host:6333")
    args = parser.parse_args(argv)
    data = measure([float(s) for s in args.sizes.split(",")], args.qdrant)
    print(f"Qdrant: {data['qdrant']}")
    print(
        f"{'file MB':>8} {'text MB':>8} {'chunks':>7} {'upload s':>9} {'total s':>8} {'MB/s':>6}  status"
    )
    for run in data["runs"]:
        print(
            f"{run['file_mb']:>8} {run['text_mb']:>8} {run['chunks']:>7} {run['upload_s']:>9} "
            f"{run['total_s']:>8} {run['mb_per_s']:>6}  {run['status']}"
        )
    name = "ingestion-" + ("server" if args.qdrant.startswith("http") else args.qdrant)
    print(f"results: {write_result(name, data)}")
    return data


if __name__ == "__main__":
    main()
