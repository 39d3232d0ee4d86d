"""Close the answers a dead worker left `streaming` (SIGKILL, OOM, a task replaced mid-answer).

The lease is the turn's age: a worker never lets a turn run longer than TURN_MAX_SECONDS (it stops
and saves `interrupted`, wwhd/turns.py), so an answer still `streaming` after TURN_MAX_SECONDS plus
a margin for clock skew between tasks has no live worker anywhere, whichever process or task
started it. No heartbeat writes: a lease that costs nothing per turn, at the price of closing a
stuck turn minutes after its worker died rather than seconds.

"With what was saved": the text in the row, or — when the turn's events are still in the stream
store (Redis survives the worker; memory survives only in its own process) — the streamed tokens.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from flask import Flask
from sqlalchemy import select, update

from . import streams
from .extensions import db
from .models import Message
from .models.base import utcnow

log = logging.getLogger(__name__)
CLOCK_MARGIN_SECONDS = 60
BATCH = 500


def _streamed_text(app: Flask, message_id: str) -> str | None:
    try:
        entries = streams.get_store(app).read(message_id, 0, 0)
    except Exception:  # the store is down: keep what the row has
        return None
    if not entries:
        return None
    return "".join(json.loads(data)["content"] for _, event, data in entries if event == "token")


def close_stuck_turns(app: Flask) -> int:
    """Mark `interrupted` every answer still `streaming` past its lease; returns how many."""
    cutoff = utcnow() - timedelta(seconds=app.config["TURN_MAX_SECONDS"] + CLOCK_MARGIN_SECONDS)
    running = set(app.extensions.get("wwhd_turns", {}))  # ours and alive: never touch them
    closed = 0
    with app.app_context():
        try:
            stuck = db.session.execute(
                select(Message.id, Message.content)
                .where(Message.status == "streaming", Message.created_at < cutoff)
                .order_by(Message.created_at)
                .limit(BATCH)
            ).all()
            for message_id, content in stuck:
                if message_id in running:
                    continue
                streamed = _streamed_text(app, message_id)
                text = streamed if streamed and len(streamed) > len(content or "") else content
                # Conditional: a worker that finished meanwhile keeps its own save.
                result = db.session.execute(
                    update(Message)
                    .where(Message.id == message_id, Message.status == "streaming")
                    .values(
                        status="interrupted",
                        content=text or "",
                        error="worker stopped",
                        completed_at=utcnow(),
                    )
                    .execution_options(synchronize_session=False)
                )
                closed += result.rowcount
            db.session.commit()
        finally:
            db.session.remove()
    if closed:
        log.warning("closed stuck turns", extra={"turns": closed})
    return closed
