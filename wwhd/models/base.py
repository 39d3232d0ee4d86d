"""Column helpers shared by the models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def utcnow() -> datetime:
    # Naive UTC: SQLite has no time zones, and one convention everywhere avoids mixed comparisons.
    return datetime.now(UTC).replace(tzinfo=None)


def new_uuid() -> str:
    return str(uuid.uuid4())


def new_security_stamp() -> str:
    return uuid.uuid4().hex


# SQLite reuses the largest freed rowid without AUTOINCREMENT: a deleted user's id (and so their
# still-signed tokens) or a deleted document's id (and so saved citations) would go to a stranger.
AUTOINCREMENT = {"sqlite_autoincrement": True}


def isoformat(value: datetime | None) -> str | None:
    return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z") if value else None
