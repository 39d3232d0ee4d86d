"""Registration, login (JSON and OAuth2 form), refresh, logout, whoami."""

from __future__ import annotations

from flask_jwt_extended import get_jwt

from .. import accounts
from ..errors import ValidationError
from ..extensions import db
from . import PUBLIC, Blueprint, schemas

bp = Blueprint("auth", __name__, description="Accounts and tokens")


@bp.post("/auth/signup", endpoint="signup")
@bp.post("/auth/register")
@bp.doc(security=PUBLIC)
@bp.arguments(schemas.Register)
@bp.response(201, schemas.Tokens)
def register(body: dict):
    """Create an account (always a plain user; an admin grants roles)"""
    username = body.get("username") or body["email"].split("@")[0]
    user = accounts.create_user(
        body["email"], username, body["password"], "user", body.get("display_name")
    )
    tokens = accounts.issue_tokens(user)
    db.session.commit()
    return tokens


@bp.post("/auth/login")
@bp.doc(security=PUBLIC)
@bp.arguments(schemas.Login)
@bp.response(200, schemas.Tokens)
def login(body: dict):
    """Log in with `email` (or `username`) and `password`"""
    identifier = body.get("email") or body.get("username")
    if not identifier:
        raise ValidationError(
            "Send 'email' (or 'username') and 'password'.",
            fields=[{"field": "email", "message": "required"}],
        )
    return _sign_in(identifier, body["password"])


def _sign_in(identifier: str, password: str) -> dict:
    tokens = accounts.issue_tokens(accounts.authenticate(identifier, password))
    db.session.commit()
    return tokens


@bp.post("/auth/token")
@bp.doc(security=PUBLIC)
@bp.arguments(schemas.TokenForm, location="form")
@bp.response(200, schemas.Tokens)
def token(form: dict):
    """OAuth2 password grant (form-encoded); `username` may be a username or an email"""
    return _sign_in(form["username"], form["password"])


@bp.post("/auth/refresh")
@accounts.require_role("viewer", refresh=True)
@bp.response(200, schemas.Tokens)
def refresh():
    """A new access token (send the refresh token as the bearer)"""
    return accounts.refresh_access_token(accounts.current_user(), get_jwt())


@bp.post("/auth/logout")
@accounts.require_role("viewer")
@bp.response(200, schemas.Detail)
def logout():
    """Revoke the login session: its access and refresh tokens stop working"""
    accounts.revoke_session(get_jwt()["sid"])
    db.session.commit()
    return {"detail": "Logged out."}


@bp.get("/auth/me")
@accounts.require_role("viewer")
@bp.response(200, schemas.User)
def whoami():
    """The signed-in user"""
    return accounts.current_user().to_dict()
