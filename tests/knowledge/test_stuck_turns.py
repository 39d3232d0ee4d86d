"""Answers a dead worker left `streaming` are closed as `interrupted` (issue 14, item 10)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from wwhd.accounts import create_user
from wwhd.conversations import start_turn
from wwhd.deps import start_jobs
from wwhd.extensions import db
from wwhd.models import Message, User
from wwhd.models.base import utcnow
from wwhd.stuck_turns import CLOCK_MARGIN_SECONDS, close_stuck_turns


def _turn(app, started_seconds_ago: float, content: str = "") -> str:
    """An assistant answer left `streaming` as a worker killed mid-answer leaves it."""
    with app.app_context():
        user = db.session.scalar(select(User).limit(1))
        if user is None:
            user = create_user("stuck@example.com", "stuck", "correct-horse-battery", "user")
            db.session.flush()
        turn = start_turn(user, "How do we stop fighting about money?", None, None)
        reply = db.session.get(Message, turn.assistant_message_id)
        reply.created_at = utcnow() - timedelta(seconds=started_seconds_ago)
        reply.content = content
        db.session.commit()
        return turn.assistant_message_id


def _status(app, message_id: str) -> tuple[str, str, str | None]:
    with app.app_context():
        reply = db.session.get(Message, message_id)
        return reply.status, reply.content, reply.error


def test_a_turn_past_its_lease_is_closed_and_a_live_one_is_not(app):
    lease = app.config["TURN_MAX_SECONDS"] + CLOCK_MARGIN_SECONDS
    dead = _turn(app, lease + 30, content="Keep a money date")
    live = _turn(app, 5)
    assert close_stuck_turns(app) == 1
    status, content, error = _status(app, dead)
    assert status == "interrupted" and content == "Keep a money date" and error
    assert _status(app, live)[0] == "streaming"
    assert close_stuck_turns(app) == 0  # idempotent


def test_the_served_app_closes_stuck_turns_at_start_up(app):
    dead = _turn(app, app.config["TURN_MAX_SECONDS"] + CLOCK_MARGIN_SECONDS + 1)
    runner = start_jobs(app)
    runner.startup.result(timeout=60)
    assert _status(app, dead)[0] == "interrupted"


def test_a_stuck_turn_gets_the_text_its_stream_kept(app):
    """The worker died after streaming tokens it never saved: the store still has them."""
    from wwhd import sse, streams

    dead = _turn(app, app.config["TURN_MAX_SECONDS"] + CLOCK_MARGIN_SECONDS + 1)
    store = streams.get_store(app)
    store.create(dead)
    events = [("start", {}), ("citation", {"citations": []})]
    events += [("token", {"content": "Keep a "}), ("token", {"content": "money date [1]"})]
    store.append(dead, 1, [(e, sse.payload(e, d)) for e, d in events])
    assert close_stuck_turns(app) == 1
    assert _status(app, dead)[:2] == ("interrupted", "Keep a money date [1]")
