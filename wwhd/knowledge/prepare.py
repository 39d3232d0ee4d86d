"""A job's CPU work — parse, chunk, chunk ids, BM25 and local dense vectors — written to files that
the serving worker then streams into Qdrant and SQL a batch at a time.

    python -m wwhd.knowledge.prepare SPEC.json OUT_DIR
    python -m wwhd.knowledge.prepare --parse UPLOAD FILENAME OUT_DIR   (an upload request's parse)

Under gunicorn's gevent worker a job runs main() in a short-lived child process (child.py starts
it without importing the app): pure-Python work in a thread of the worker still takes the GIL
from the event loop for up to the 5 ms switch interval every time the loop waits on I/O (a 10 MB
transcript held /health for 0.3-0.6 s at a time), and its garbage (~200 MB of strings, token
lists and vectors for 5,450 chunks) stayed in the worker's heap. A child has its own GIL, and its
memory goes back to the OS when it exits. Embedded Qdrant's folder belongs to the worker, so the
writes stay there. Without gevent (tests, CLI) `prepare()` runs in-process: same files, same rows.

SPEC: {"document_id", "content_path" (UTF-8 text), "original_path" (optional upload bytes),
"handoff_path" (optional: the upload's parse of the original, handoff.py),
"filename", "checksum" (of the content: the original is used only when its text matches),
"dense" (embed with the packaged local model here)}. OUT_DIR gets rows.jsonl (one chunk a line,
with its sparse vector), dense.npy (float32, one row per chunk, when dense) and result.json; on a
failure error.json ({"type", "message", "code"}) and exit status 1.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

import orjson

from . import handoff
from .chunking import checksum, chunk_id, chunk_sections
from .parsers import ParsedDocument, ParseError, parse_bytes, parse_text

BATCH = 32  # chunks per vector computation, as KnowledgeIndex.upsert embeds them (same numbers)


def parsed_from(spec: dict) -> tuple[ParsedDocument, str]:
    """The original upload when its text is still the document's content (it keeps PDF pages and
    exact cue times), else the content as stored; and which one it was. The original's sections
    come from the upload's own parse when it handed them on (handoff.py), else from parsing it."""
    handed = spec.get("handoff_path")
    if handed and spec.get("original_path"):
        parsed = handoff.load(handed, spec["checksum"], spec.get("filename"))
        if parsed is not None:
            return parsed, "original"
    original = spec.get("original_path")
    if original:
        try:
            parsed = parse_bytes(Path(original).read_bytes(), spec.get("filename"))
            if checksum(parsed.text) == spec["checksum"]:
                return parsed, "original"
        except Exception:  # unreadable original: the SQL content is the record anyway
            pass
    return parse_text(Path(spec["content_path"]).read_text(encoding="utf-8")), "content"


def prepare(spec: dict, out_dir: Path) -> dict:
    """Write the chunk rows and vectors of the document in `spec` to `out_dir`; returns result.json."""
    from . import sparse

    parsed, source = parsed_from(spec)
    pieces = chunk_sections(parsed.sections)
    embedder = None
    if spec.get("dense") and pieces:
        from ..providers.local_embed import LocalEmbedder

        embedder = LocalEmbedder()
    dense = []
    # orjson, not json: the rows file is written once and read twice (points, then SQL rows);
    # json took ~0.55 s of a 5 MB transcript's 3.7 CPU s (mostly decoding), orjson ~0.14 s, and
    # both give back exactly the values written (floats round-trip).
    with open(out_dir / "rows.jsonl", "wb") as rows:
        for start in range(0, len(pieces), BATCH):
            batch = pieces[start : start + BATCH]
            if embedder is not None:
                dense.append(embedder.embed_array([p.text for p in batch]))
            for piece in batch:
                indices, values = sparse.document_vector(piece.text)
                row = {
                    "id": chunk_id(spec["document_id"], piece.index, piece.text),
                    "index": piece.index,
                    "text": piece.text,
                    "start_s": piece.start_s,
                    "end_s": piece.end_s,
                    "page": piece.page,
                    "marks": [list(mark) for mark in piece.marks] or None,
                    "sparse": [indices, values],
                }
                rows.write(orjson.dumps(row) + b"\n")
    if embedder is not None:
        import numpy as np

        np.save(out_dir / "dense.npy", np.concatenate(dense))
    import resource

    result = {
        "chunks": len(pieces),
        "source": source,
        "dense": embedder is not None,
        # This process's peak RSS (Linux: KiB); in-process it is the caller's.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    (out_dir / "result.json").write_text(json.dumps(result))
    return result


def parse_upload(upload: Path, filename: str, out_dir: Path) -> dict:
    """An upload request's parse: the text (text.txt), the sections for the job (sections.json)
    and what add_source needs of it; the sections (~50 MB of objects for a 10 MB transcript) never
    reach the serving worker."""
    import resource

    parsed = parse_bytes(upload.read_bytes(), filename or None)
    text = parsed.text
    digest = checksum(text)
    (out_dir / "text.txt").write_text(text, encoding="utf-8")
    # For the document's job, if this upload makes one (ingest.add_source keeps it then).
    sections = handoff.encode(parsed, digest, filename or None)
    if sections is not None:
        (out_dir / "sections.json").write_bytes(sections)
    result = {
        "kind": parsed.kind,
        "title": parsed.title,
        "checksum": digest,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    (out_dir / "result.json").write_text(json.dumps(result))
    return result


def main(argv: list[str]) -> int:
    # A short-lived child with one job: no cyclic collection at all (gc_pause.py says why); its
    # memory goes back to the OS when it exits.
    gc.disable()
    out_dir = Path(argv[-1])
    try:
        if argv[0] == "--parse":
            parse_upload(Path(argv[1]), argv[2], out_dir)
        else:
            prepare(json.loads(Path(argv[0]).read_text()), out_dir)
    except Exception as exc:  # reported to the worker, which fails the job with it
        error = {"type": type(exc).__name__, "message": str(exc)[:2000]}
        if isinstance(exc, ParseError):
            error.update(message=exc.message, code=exc.code)
        (out_dir / "error.json").write_text(json.dumps(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
