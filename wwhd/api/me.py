"""The signed-in user's profile, settings and usage today."""

from __future__ import annotations

from flask import Blueprint, jsonify

from .. import accounts, usage
from ..errors import ValidationError
from ..extensions import db
from ..validation import strip_bidi
from . import json_body

bp = Blueprint("me", __name__)
EDITABLE = {"display_name", "settings"}


def _profile(user) -> dict:
    return {**user.to_dict(), "usage_today": usage.usage_today(user.id)}


@bp.get("/me")
@accounts.require_role("viewer")
def get_me():
    return jsonify(_profile(accounts.current_user()))


@bp.patch("/me")
@accounts.require_role("viewer")
def update_me():
    body = json_body()
    unknown = set(body) - EDITABLE
    if unknown:
        raise ValidationError(
            f"Only {sorted(EDITABLE)} can be changed here; got {sorted(unknown)}.",
            fields=[{"field": name, "message": "not editable"} for name in sorted(unknown)],
        )
    user = accounts.current_user()
    if "display_name" in body:
        name = body["display_name"]
        if name is not None and (not isinstance(name, str) or len(name) > 120):
            raise ValidationError(
                "display_name must be a string of at most 120 characters.",
                fields=[{"field": "display_name", "message": "invalid"}],
            )
        user.display_name = strip_bidi(name) if name is not None else None
    if "settings" in body:
        if not isinstance(body["settings"], dict) or len(str(body["settings"])) > 5000:
            raise ValidationError(
                "settings must be a JSON object (under 5 KB).",
                fields=[{"field": "settings", "message": "invalid"}],
            )
        user.settings = {**(user.settings or {}), **body["settings"]}
    db.session.commit()
    return jsonify(_profile(user))


@bp.post("/me/password")
@accounts.require_role("viewer")
def change_password():
    """Sets a new password; every earlier token (all devices) stops working and a new pair is
    returned for this one."""
    body = json_body()
    user = accounts.current_user()
    accounts.change_password(user, body.get("current_password"), body.get("new_password"))
    tokens = accounts.issue_tokens(user)
    db.session.commit()
    return jsonify(tokens)
