"""The signed-in user's profile, settings and usage today."""

from __future__ import annotations

from .. import accounts, usage
from ..extensions import db
from ..validation import strip_bidi
from . import Blueprint, schemas

bp = Blueprint("me", __name__, description="Your profile")


def _profile(user) -> dict:
    return {**user.to_dict(), "usage_today": usage.usage_today(user.id)}


@bp.get("/me")
@accounts.require_role("viewer")
@bp.response(200, schemas.Profile)
def get_me():
    """Profile, settings and usage today"""
    return _profile(accounts.current_user())


@bp.patch("/me")
@accounts.require_role("viewer")
@bp.arguments(schemas.ProfileChange)
@bp.response(200, schemas.Profile)
def update_me(body: dict):
    """Change the display name or merge settings"""
    user = accounts.current_user()
    if "display_name" in body:
        name = body["display_name"]
        user.display_name = strip_bidi(name) if name is not None else None
    if "settings" in body:
        user.settings = {**(user.settings or {}), **body["settings"]}
    db.session.commit()
    return _profile(user)


@bp.post("/me/password")
@accounts.require_role("viewer")
@bp.arguments(schemas.PasswordChange)
@bp.response(200, schemas.Tokens)
def change_password(body: dict):
    """Set a new password; every earlier token (all devices) stops working and a new pair is
    returned for this one"""
    user = accounts.current_user()
    accounts.change_password(user, body["current_password"], body["new_password"])
    tokens = accounts.issue_tokens(user)
    db.session.commit()
    return tokens
