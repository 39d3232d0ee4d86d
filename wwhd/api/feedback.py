"""Thumbs up/down on an answer or one of its citations, by the person who asked."""

from __future__ import annotations

from .. import accounts
from ..extensions import db
from ..feedback import feedback_dict, record_feedback
from . import Blueprint, schemas

bp = Blueprint("feedback", __name__, description="Rate answers")


@bp.post("/messages/<message_id>/feedback")
@accounts.require_role("viewer")
@bp.arguments(schemas.FeedbackRequest)
@bp.response(201, schemas.Feedback, description="A new rating")
@bp.alt_response(200, schema=schemas.Feedback, description="Rating replaced", success=True)
def rate(body: dict, message_id: str):
    """Thumbs up/down on an answer, or on one of its citations (`citation_id`)"""
    row, created = record_feedback(accounts.current_user(), message_id, body)
    db.session.commit()
    return feedback_dict(row), 201 if created else 200
