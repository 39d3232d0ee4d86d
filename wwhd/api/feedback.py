"""Thumbs up/down on an answer or one of its citations, by the person who asked."""

from __future__ import annotations

from flask import Blueprint, jsonify

from .. import accounts
from ..extensions import db
from ..feedback import feedback_dict, record_feedback
from . import json_body

bp = Blueprint("feedback", __name__)


@bp.post("/messages/<message_id>/feedback")
@accounts.require_role("viewer")
def rate(message_id: str):
    row, created = record_feedback(accounts.current_user(), message_id, json_body())
    db.session.commit()
    return jsonify(feedback_dict(row)), 201 if created else 200
