"""An upload's parsed sections handed to its indexing job, so the job does not parse the same file
a second time (a 5 MB WebVTT transcript: ~0.3 CPU s to parse, ~0.03 s to write and read back).

The upload request (or its parse child) saves the sections in a private folder of this machine's
temp directory once the document is created; the job reads them when it would otherwise parse the
stored original, then removes the file. A file is named by a hash of the original's bytes and the
filename it was parsed with, which is all a parse depends on, so whichever process or app on this
machine finds it gets exactly what parsing that original would give (orjson round-trips the text
and float times); it also carries the text's checksum, which must be the document's. Nothing
depends on the file being there: a job on another machine, a retry or a reindex parses the
original as before. Files no job collected are removed after MAX_AGE_S.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import time
from pathlib import Path

import orjson

from .parsers import ParsedDocument, Section

MAX_AGE_S = 24 * 3600


def folder() -> Path | None:
    """This user's handoff folder (created 0700), or None when it is not usable or not private:
    another account must not be able to plant sections for our jobs."""
    path = Path(tempfile.gettempdir()) / f"wwhd-parsed-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
    return path if private and not info.st_mode & 0o077 else None


def key(original: bytes, filename: str | None) -> str:
    """What names an original's sections: its bytes and the filename it is parsed with."""
    digest = hashlib.sha256(original)  # hashlib releases the GIL for large inputs
    digest.update(b"\0" + (filename or "").encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def path_for(name: str) -> Path | None:
    place = folder()
    return None if place is None else place / f"{name}.json"


def encode(parsed: ParsedDocument, digest: str, filename: str | None) -> bytes | None:
    """The file's content; None when orjson cannot write the text (a lone surrogate): then the
    job parses the original, as it would without a handoff."""
    try:
        return orjson.dumps(
            {
                "checksum": digest,
                "filename": filename,
                "kind": parsed.kind,
                "title": parsed.title,
                "sections": [tuple(section) for section in parsed.sections],
            }
        )
    except orjson.JSONEncodeError:
        return None


def save(data: bytes | None, name: str) -> None:
    """Keep encoded sections under `name` (key()) for the document's job (best effort)."""
    place = folder()
    if place is None or data is None:
        return
    try:
        fd, temporary = tempfile.mkstemp(dir=place, suffix=".part")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError:
        return
    keep(temporary, name)


def set_aside(written: Path) -> Path | None:
    """Move a file a parse child wrote (in a work folder about to be removed) into the handoff
    folder until the upload knows whether it made a document: then keep() or discard()."""
    place = folder()
    if place is None or not written.exists():
        return None
    target = None
    try:
        fd, target = tempfile.mkstemp(dir=place, suffix=".part")
        os.close(fd)
        os.replace(written, target)
    except OSError:  # a full disk, another file system (not worth a copy): the job parses
        discard(target)
        return None
    return Path(target)


def keep(file: str | Path | None, name: str) -> None:
    """Make `file` (in the handoff folder) the sections under `name` (key())."""
    target = path_for(name)
    if file is None:
        return
    if target is None:
        discard(file)
        return
    try:
        _sweep(target.parent)
        os.replace(file, target)  # a reader sees the whole file or none
    except OSError:
        discard(file)


def load(path: str | Path, digest: str, filename: str | None) -> ParsedDocument | None:
    """The sections saved in `path` when their text's checksum is `digest` and they were parsed
    with `filename`, else None."""
    try:
        saved = orjson.loads(Path(path).read_bytes())
        if saved["checksum"] != digest or saved["filename"] != filename:
            return None
        sections = [Section(*fields) for fields in saved["sections"]]
        return ParsedDocument(saved["kind"], sections, saved["title"])
    except (OSError, ValueError, KeyError, TypeError):  # unreadable: the job parses instead
        return None


def discard(path: str | Path | None) -> None:
    if path:
        try:
            Path(path).unlink(missing_ok=True)
        except OSError:
            pass


def _sweep(place: Path) -> None:
    """Remove files older than MAX_AGE_S: documents deleted or edited before their job ran."""
    cutoff = time.time() - MAX_AGE_S
    for entry in os.scandir(place):
        try:
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
        except OSError:
            continue
