"""Registration, login (JSON and OAuth2 form), refresh, logout, whoami."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_jwt_extended import get_jwt

from .. import accounts
from ..errors import ValidationError
from ..extensions import db
from . import json_body

bp = Blueprint("auth", __name__)


@bp.post("/auth/register")
@bp.post("/auth/signup")
def register():
    body = json_body()
    for field in ("email", "password"):
        if not isinstance(body.get(field), str):
            raise ValidationError(
                f"Field '{field}' is required.", fields=[{"field": field, "message": "required"}]
            )
    username = body.get("username") or body["email"].split("@")[0]
    if not isinstance(username, str):
        raise ValidationError(
            "Field 'username' must be a string.",
            fields=[{"field": "username", "message": "not a string"}],
        )
    # Self-registration always makes a plain user; roles are granted by an admin.
    user = accounts.create_user(
        body["email"], username, body["password"], "user", body.get("display_name")
    )
    tokens = accounts.issue_tokens(user)
    db.session.commit()
    return jsonify(tokens), 201


@bp.post("/auth/login")
def login():
    body = json_body()
    identifier = body.get("email") or body.get("username")
    password = body.get("password")
    if (
        not isinstance(identifier, str)
        or not isinstance(password, str)
        or not identifier
        or not password
    ):
        raise ValidationError(
            "Send 'email' (or 'username') and 'password'.",
            fields=[
                {"field": "email", "message": "required"},
                {"field": "password", "message": "required"},
            ],
        )
    return _sign_in(identifier, password)


def _sign_in(identifier: str, password: str):
    tokens = accounts.issue_tokens(accounts.authenticate(identifier, password))
    db.session.commit()
    return jsonify(tokens)


@bp.post("/auth/token")
def token():
    """OAuth2 password grant (form-encoded); `username` may be a username or an email."""
    identifier = request.form.get("username")
    password = request.form.get("password")
    if not identifier or not password:
        raise ValidationError(
            "Send form fields 'username' and 'password'.",
            fields=[
                {"field": "username", "message": "required"},
                {"field": "password", "message": "required"},
            ],
        )
    return _sign_in(identifier, password)


@bp.post("/auth/refresh")
@accounts.require_role("viewer", refresh=True)
def refresh():
    return jsonify(accounts.refresh_access_token(accounts.current_user(), get_jwt()))


@bp.post("/auth/logout")
@accounts.require_role("viewer")
def logout():
    """Revokes the login session: its access and refresh tokens stop working."""
    accounts.revoke_session(get_jwt()["sid"])
    db.session.commit()
    return jsonify({"detail": "Logged out."})


@bp.get("/auth/me")
@accounts.require_role("viewer")
def whoami():
    return jsonify(accounts.current_user().to_dict())
