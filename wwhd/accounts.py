"""Passwords, tokens, JWT callbacks and role checks."""

from __future__ import annotations

import re
from functools import wraps

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    get_jwt,
    verify_jwt_in_request,
)
from sqlalchemy import func, or_, select

from .errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationError
from .extensions import db, jwt
from .models import AuthSession, User
from .models.accounts import ROLES
from .models.base import utcnow
from .offload import cpu_bound

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
MIN_PASSWORD = 8
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}


def _hasher() -> PasswordHasher:
    cfg = current_app.config
    return PasswordHasher(time_cost=cfg["ARGON2_TIME_COST"], memory_cost=cfg["ARGON2_MEMORY_KIB"])


# argon2 takes 0.2-0.5 s of CPU at production cost; in a gevent worker that would stall every open
# chat stream, so the hashing runs in a real OS thread (argon2-cffi releases the GIL meanwhile).
def hash_password(password: str) -> str:
    return cpu_bound(_hasher().hash, password)


def verify_password(user: User | None, password: str) -> bool:
    if user is None:
        # Spend the same time as a real check so response timing does not reveal which emails exist.
        cpu_bound(_hasher().hash, password)
        return False
    try:
        return cpu_bound(_hasher().verify, user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def validate_new_user(email: str, username: str, password: str, role: str = "user") -> list[dict]:
    fields = []
    if not EMAIL_RE.match(email or ""):
        fields.append({"field": "email", "message": "Enter a valid email address."})
    if not USERNAME_RE.match(username or ""):
        fields.append(
            {"field": "username", "message": "Use 3-64 letters, digits, '.', '_' or '-'."}
        )
    if len(password or "") < MIN_PASSWORD:
        fields.append({"field": "password", "message": f"Use at least {MIN_PASSWORD} characters."})
    elif len(password) > 1024:
        fields.append({"field": "password", "message": "Password is too long."})
    if role not in ROLES:
        fields.append({"field": "role", "message": f"Role must be one of {', '.join(ROLES)}."})
    return fields


def create_user(
    email: str, username: str, password: str, role: str = "user", display_name: str | None = None
) -> User:
    """Validate and add a user (flushes; the caller commits). Raises ValidationError or Conflict."""
    email = (email or "").strip().lower()
    username = (username or "").strip()
    fields = validate_new_user(email, username, password, role)
    if fields:
        raise ValidationError(fields[0]["message"], fields=fields)
    taken = db.session.scalar(
        select(User).where(or_(User.email == email, func.lower(User.username) == username.lower()))
    )
    if taken:
        field = "email" if taken.email == email else "username"
        raise Conflict(
            f"That {field} is already registered.",
            fields=[{"field": field, "message": "already registered"}],
        )
    user = User(
        email=email,
        username=username,
        password_hash=hash_password(password),
        role=role,
        display_name=display_name or username,
    )
    db.session.add(user)
    db.session.flush()
    return user


def find_login(identifier: str) -> User | None:
    """Look a user up by email or username (case-insensitive)."""
    ident = (identifier or "").strip().lower()
    if not ident:
        return None
    return db.session.scalar(
        select(User).where(or_(User.email == ident, func.lower(User.username) == ident))
    )


def authenticate(identifier: str, password: str) -> User:
    user = find_login(identifier)
    if not verify_password(user, password or ""):
        raise Unauthorized("Incorrect email/username or password.")
    if not user.is_active:
        raise Forbidden("This account is disabled.")
    return user


def issue_tokens(user: User) -> dict:
    """Start a login session and return the OAuth2-style token response (flushes; caller commits)."""
    session = AuthSession(user_id=user.id)
    db.session.add(session)
    user.last_login_at = utcnow()
    db.session.flush()
    claims = {"role": user.role, "sid": session.id}
    cfg = current_app.config
    return {
        "access_token": create_access_token(identity=str(user.id), additional_claims=claims),
        "refresh_token": create_refresh_token(identity=str(user.id), additional_claims=claims),
        "token_type": "bearer",
        "expires_in": int(cfg["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
        "user": user.to_dict(),
    }


def refresh_access_token(user: User, claims: dict) -> dict:
    access = create_access_token(
        identity=str(user.id), additional_claims={"role": user.role, "sid": claims["sid"]}
    )
    cfg = current_app.config
    return {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": int(cfg["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
    }


def revoke_session(session_id: str) -> None:
    session = db.session.get(AuthSession, session_id)
    if session and not session.revoked_at:
        session.revoked_at = utcnow()


def current_user() -> User:
    return g.current_user


def require_role(minimum: str, *, refresh: bool = False):
    """Decorator: a valid, unrevoked token of an active user with at least `minimum` role."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request(refresh=refresh)
            claims = get_jwt()
            # The library only refuses refresh tokens on access routes; accept exactly the right type.
            if claims.get("type") != ("refresh" if refresh else "access"):
                raise Unauthorized("Wrong token type for this endpoint.")
            user = db.session.get(User, int(claims["sub"]))
            if user is None or not user.is_active:
                raise Unauthorized("This account no longer exists or is disabled.")
            if ROLE_RANK[user.role] < ROLE_RANK[minimum]:
                if minimum == "admin":
                    raise Forbidden("Admin role required.")
                raise Forbidden(f"Your role ({user.role}) cannot do this; it needs '{minimum}'.")
            g.current_user = user
            g.user_id = user.id
            return view(*args, **kwargs)

        return wrapper

    return decorator


def get_user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("User not found.")
    return user


def register_jwt_callbacks() -> None:
    @jwt.token_in_blocklist_loader
    def is_revoked(_header: dict, payload: dict) -> bool:
        sid = payload.get("sid")
        if not sid:
            return True
        session = db.session.get(AuthSession, sid)
        return session is None or session.revoked_at is not None

    def _unauthorized(message: str):
        from .errors import error_response

        return error_response(401, "UNAUTHORIZED", message, headers={"WWW-Authenticate": "Bearer"})

    jwt.unauthorized_loader(
        lambda reason: _unauthorized("Missing or malformed Authorization header (Bearer token).")
    )
    jwt.invalid_token_loader(lambda reason: _unauthorized("Invalid token."))
    jwt.expired_token_loader(lambda _h, _p: _unauthorized("Token has expired."))
    jwt.revoked_token_loader(lambda _h, _p: _unauthorized("Token has been revoked."))
    jwt.needs_fresh_token_loader(lambda _h, _p: _unauthorized("Fresh token required."))
    jwt.user_lookup_error_loader(lambda _h, _p: _unauthorized("Unknown user."))

    @jwt.token_verification_failed_loader
    def _failed(_h, _p):
        return _unauthorized("Token verification failed.")
