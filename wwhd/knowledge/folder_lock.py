"""Is an embedded Qdrant folder held by another process? Asked before opening it.

Qdrant's local mode takes an exclusive, non-blocking portalocker lock on `<path>/.lock` once it
has loaded the whole folder; we try the same lock on the same file and let it go again. Asking
first also matters because qdrant-client, refused the lock, raises without closing the file it
opened (a leaked handle per attempt).
"""

from __future__ import annotations

from pathlib import Path

IN_USE = "Storage folder {path} is already accessed by another instance of Qdrant client."


def held_by_another_process(path: str) -> bool:
    lock_file = Path(path) / ".lock"
    if not lock_file.exists():
        return False  # never opened: nobody holds it
    import portalocker  # lazy: it imports redis (wwhd/lazy.py)

    with open(lock_file, "r+") as handle:
        try:
            portalocker.lock(
                handle, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
            )
        except portalocker.exceptions.LockException:
            return True
        portalocker.unlock(handle)
    return False
