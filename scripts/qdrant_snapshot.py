#!/usr/bin/env python3
"""Take a full Qdrant snapshot (the kind the qdrant task restores at start) and keep only the newest KEEP."""

# Stdlib only: the copilot/qdrant-snapshot job image is python:slim plus this file.
#
# Environment:
#   QDRANT_URL         e.g. http://qdrant.<env>.<app>.local:6333. Unset: built from Copilot's
#                      COPILOT_SERVICE_DISCOVERY_ENDPOINT (a Scheduled Job cannot use Service Connect).
#   QDRANT_API_KEY     sent as the api-key header; never printed.
#   QDRANT_COLLECTION  the alias the app searches (default wwhd_chunks). A missing alias or an
#                      empty collection behind it stops the run: snapshotting an index that came
#                      up empty would, after KEEP runs, prune every good snapshot.
#   KEEP               snapshots to keep, newest first (default 8).
#   QDRANT_TIMEOUT_S / QDRANT_SNAPSHOT_TIMEOUT_S   per-call socket timeouts (default 30 / 1800).
# Exits 0 on success, 1 on any failure (the job's retries and alarms see it), 2 on bad settings.
from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping


class SnapshotError(Exception):
    """A failed Qdrant call or an unsafe index state; the message names which."""


def log(event: str, **fields) -> None:
    """One JSON object per line on stdout, readable by `copilot job logs`."""
    print(
        json.dumps(
            {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "event": event,
                **fields,
            }
        ),
        flush=True,
    )


class Qdrant:
    """The few REST calls this job needs, each with a bounded timeout."""

    def __init__(self, url: str, api_key: str, timeout: float, snapshot_timeout: float) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.snapshot_timeout = snapshot_timeout

    def call(self, method: str, path: str, timeout: float | None = None):
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["api-key"] = self.api_key
        request = urllib.request.Request(self.url + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as reply:
                body = reply.read()
        except urllib.error.HTTPError as exc:
            with exc:  # a partial read leaves the socket open otherwise
                detail = exc.read(500).decode("utf-8", "replace")
            raise SnapshotError(f"{method} {path}: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:  # refused, DNS, timeout
            raise SnapshotError(f"{method} {path}: {getattr(exc, 'reason', exc)}") from None
        try:
            return json.loads(body)["result"]
        except (ValueError, KeyError, TypeError):
            raise SnapshotError(
                f"{method} {path}: not a Qdrant JSON reply: {body[:200]!r}"
            ) from None

    def collection_behind(self, alias: str) -> str:
        aliases = self.call("GET", "/aliases").get("aliases") or []
        for item in aliases:
            if item.get("alias_name") == alias:
                return item["collection_name"]
        raise SnapshotError(
            f"alias {alias!r} does not exist: the index was never built or came up empty. "
            "Not snapshotting; run `flask wwhd reindex --all` first."
        )

    def points(self, collection: str) -> int | None:
        return self.call("GET", f"/collections/{quote(collection)}").get("points_count")

    def create_snapshot(self) -> dict:
        return self.call("POST", "/snapshots?wait=true", timeout=self.snapshot_timeout)

    def snapshots(self) -> list[dict]:
        return self.call("GET", "/snapshots")

    def delete_snapshot(self, name: str) -> None:
        self.call("DELETE", f"/snapshots/{quote(name)}?wait=true")


def quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def newest_first(snapshots: list[dict]) -> list[dict]:
    # Full snapshot names embed their UTC time, so the name breaks ties and covers a missing time.
    return sorted(snapshots, key=lambda s: (s.get("creation_time") or "", s["name"]), reverse=True)


def settings(env: Mapping[str, str]) -> dict:
    url = env.get("QDRANT_URL", "").strip()
    if not url and env.get("COPILOT_SERVICE_DISCOVERY_ENDPOINT"):
        url = f"http://qdrant.{env['COPILOT_SERVICE_DISCOVERY_ENDPOINT']}:6333"
    if not url:
        raise ValueError("QDRANT_URL is not set (nor COPILOT_SERVICE_DISCOVERY_ENDPOINT)")
    keep = int(env.get("KEEP", "8"))
    if keep < 1:
        raise ValueError("KEEP must be at least 1: the newest snapshot is the restore point")
    return {
        "url": url,
        "api_key": env.get("QDRANT_API_KEY", "").strip(),
        "alias": env.get("QDRANT_COLLECTION", "").strip() or "wwhd_chunks",
        "keep": keep,
        "timeout": float(env.get("QDRANT_TIMEOUT_S", "30")),
        "snapshot_timeout": float(env.get("QDRANT_SNAPSHOT_TIMEOUT_S", "1800")),
    }


def run(cfg: dict) -> dict:
    """Check the index, snapshot it, prune; returns a summary. Raises SnapshotError."""
    qdrant = Qdrant(cfg["url"], cfg["api_key"], cfg["timeout"], cfg["snapshot_timeout"])
    collection = qdrant.collection_behind(cfg["alias"])
    points = qdrant.points(collection)
    if points == 0:
        raise SnapshotError(
            f"collection {collection!r} behind {cfg['alias']!r} is empty. Not snapshotting; "
            "run `flask wwhd reindex --all` first."
        )
    log("index_checked", alias=cfg["alias"], collection=collection, points=points)
    started = time.monotonic()
    created = qdrant.create_snapshot()
    if not isinstance(created, dict) or not created.get("name"):
        raise SnapshotError(f"POST /snapshots: no snapshot name in {created!r}")
    log(
        "snapshot_created",
        name=created["name"],
        size=created.get("size"),
        seconds=round(time.monotonic() - started, 1),
    )
    existing = newest_first(qdrant.snapshots())
    # The one just taken is always kept, whatever the clocks say.
    ordered = [s for s in existing if s["name"] == created["name"]] + [
        s for s in existing if s["name"] != created["name"]
    ]
    pruned = []
    for old in ordered[cfg["keep"] :]:
        qdrant.delete_snapshot(old["name"])
        pruned.append(old["name"])
        log("snapshot_deleted", name=old["name"])
    return {
        "created": created["name"],
        "kept": [s["name"] for s in ordered[: cfg["keep"]]],
        "deleted": pruned,
    }


def main(env: Mapping[str, str] | None = None) -> int:
    try:
        cfg = settings(os.environ if env is None else env)
    except ValueError as exc:
        log("config_error", error=str(exc))
        return 2
    try:
        summary = run(cfg)
    except SnapshotError as exc:
        log("snapshot_failed", error=str(exc))
        return 1
    log("snapshot_done", **summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
