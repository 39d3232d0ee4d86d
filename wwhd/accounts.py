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
from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError

from . import limits
from .database import MAX_ID
from .errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationError, error_response
from .extensions import db, jwt
from .models import AuthSession, User
from .models.accounts import ROLES
from .models.base import utcnow
from .offload import cpu_bound
from .validation import strip_bidi

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
MIN_PASSWORD = 8
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
WRONG_LOGIN = "Incorrect email/username or password."
# Claims every token of ours carries; a token without one of them was not issued by this app.
REQUIRED_CLAIMS = ("sub", "type", "sid", "stamp", "exp")


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


def validate_password(password: str) -> list[dict]:
    if len(password or "") < MIN_PASSWORD:
        return [{"field": "password", "message": f"Use at least {MIN_PASSWORD} characters."}]
    if len(password) > 1024:
        return [{"field": "password", "message": "Password is too long."}]
    return []


def validate_new_user(email: str, username: str, password: str, role: str = "user") -> list[dict]:
    fields = []
    if not EMAIL_RE.match(email or ""):
        fields.append({"field": "email", "message": "Enter a valid email address."})
    if not USERNAME_RE.match(username or ""):
        fields.append(
            {"field": "username", "message": "Use 3-64 letters, digits, '.', '_' or '-'."}
        )
    fields += validate_password(password)
    if role not in ROLES:
        fields.append({"field": "role", "message": f"Role must be one of {', '.join(ROLES)}."})
    return fields


def create_user(
    email: str, username: str, password: str, role: str = "user", display_name: str | None = None
) -> User:
    """Validate and add a user (flushes; the caller commits). Raises ValidationError or Conflict.

    The e-mail and username checks run before the insert for a precise message; when a concurrent
    registration takes them in between, the unique index refuses the insert, the session is rolled
    back (PostgreSQL aborts the transaction anyway) and the answer is the same Conflict.
    """
    email = (email or "").strip().lower()
    username = (username or "").strip()
    fields = validate_new_user(email, username, password, role)
    if display_name is not None and (not isinstance(display_name, str) or len(display_name) > 120):
        fields.append({"field": "display_name", "message": "A string of at most 120 characters."})
    if fields:
        raise ValidationError(fields[0]["message"], fields=fields)
    _refuse_taken(email, username)
    user = User(
        email=email,
        username=username,
        password_hash=hash_password(password),
        role=role,
        display_name=strip_bidi(display_name or "").strip() or username,
    )
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        _refuse_taken(email, username)
        raise
    return user


def _refuse_taken(email: str, username: str) -> None:
    taken = db.session.scalar(
        select(User).where(or_(User.email == email, func.lower(User.username) == username.lower()))
    )
    if taken:
        field = "email" if taken.email == email else "username"
        raise Conflict(
            f"That {field} is already registered.",
            fields=[{"field": field, "message": "already registered"}],
        )


def find_login(identifier: str) -> User | None:
    """Look a user up by email or username (case-insensitive)."""
    ident = (identifier or "").strip().lower()
    if not ident:
        return None
    return db.session.scalar(
        select(User).where(or_(User.email == ident, func.lower(User.username) == ident))
    )


def authenticate(identifier: str, password: str) -> User:
    """The user whose credentials these are. Raises Unauthorized or Forbidden (disabled).

    After repeated failures an account is in back-off (LOGIN_BACKOFF): even the right password gets
    the wrong-password answer, after the same hashing work, so a guesser learns nothing from the
    reply or its timing. Unknown identifiers back off the same way, so back-off does not reveal
    which accounts exist either.
    """
    user = find_login(identifier)
    backoff_key = f"user:{user.id}" if user is not None else limits.identifier_key(identifier or "")
    backing_off = limits.login_backoff_active(backoff_key)
    correct = verify_password(user, password or "")
    if backing_off or not correct:
        limits.record_login_failure(backoff_key)
        raise Unauthorized(WRONG_LOGIN)
    limits.clear_login_failures(backoff_key)
    if not user.is_active:
        raise Forbidden("This account is disabled.")
    return user


def change_password(user: User, current: str, new: str) -> None:
    """Replace `user`'s password after checking the current one; every earlier token stops
    working (new security stamp). Flushes; the caller commits and issues new tokens.
    Raises ValidationError (wrong current password, or a new one that is too short)."""
    # A stolen access token must not become a way to guess the password: same back-off as login.
    backoff_key = f"user:{user.id}"
    backing_off = limits.login_backoff_active(backoff_key)
    correct = isinstance(current, str) and verify_password(user, current)
    if backing_off or not correct:
        limits.record_login_failure(backoff_key)
        raise ValidationError(
            "The current password is not correct.",
            fields=[{"field": "current_password", "message": "incorrect"}],
        )
    fields = validate_password(new if isinstance(new, str) else "")
    if fields:
        raise ValidationError(fields[0]["message"], fields=fields)
    user.password_hash = hash_password(new)
    user.renew_security_stamp()
    db.session.flush()


def update_account(user: User, *, role: str | None = None, is_active: bool | None = None) -> None:
    """Change role and/or active flag (flushes). A role change or a deactivation renews the
    security stamp, so tokens issued before it never work again — not even after reactivation."""
    changed = False
    if role is not None and role != user.role:
        user.role, changed = role, True
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        changed = changed or not is_active
    if changed:
        user.renew_security_stamp()
    db.session.flush()


def delete_account(user: User) -> None:
    """Delete the user and, by the foreign keys' cascades, their chats, sessions and feedback
    (token usage and documents they added stay, without the link). Their tokens die with the row:
    ids are never reused, and a later account gets a fresh security stamp. Flushes."""
    db.session.delete(user)
    db.session.flush()


def issue_tokens(user: User) -> dict:
    """Start a login session and return the OAuth2-style token response (flushes; caller commits)."""
    session = AuthSession(user_id=user.id)
    db.session.add(session)
    user.last_login_at = utcnow()
    db.session.flush()
    claims = {"role": user.role, "sid": session.id, "stamp": user.security_stamp}
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
        identity=str(user.id),
        additional_claims={"role": user.role, "sid": claims["sid"], "stamp": user.security_stamp},
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
    """Decorator: a valid, unrevoked token of an active user with at least `minimum` role, issued
    under the user's current security stamp."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request(refresh=refresh)
            claims = get_jwt()
            # The library only refuses refresh tokens on access routes; accept exactly the right type.
            if any(claims.get(name) in (None, "") for name in REQUIRED_CLAIMS):
                raise Unauthorized("Invalid token.")
            if claims.get("type") != ("refresh" if refresh else "access"):
                raise Unauthorized("Wrong token type for this endpoint.")
            user = _user_of(claims["sub"])
            if user is None or not user.is_active:
                raise Unauthorized("This account no longer exists or is disabled.")
            if claims["stamp"] != user.security_stamp:
                raise Unauthorized(
                    "This token was issued before a change to the account; sign in again."
                )
            if ROLE_RANK[user.role] < ROLE_RANK[minimum]:
                if minimum == "admin":
                    raise Forbidden("Admin role required.")
                raise Forbidden(f"Your role ({user.role}) cannot do this; it needs '{minimum}'.")
            g.current_user = user
            g.user_id = user.id
            return view(*args, **kwargs)

        return wrapper

    return decorator


def _user_of(subject) -> User | None:
    try:
        user_id = int(subject)
    except (TypeError, ValueError):
        return None
    loaded = g.pop("_wwhd_session_user", None)  # by the blocklist check, moments ago
    if loaded is not None and loaded.id == user_id:
        return loaded
    return db.session.get(User, user_id) if 0 < user_id <= MAX_ID else None


def get_user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    if user is None:
        raise NotFound("User not found.")
    return user


# A token's session and user, checked on every authenticated request: built once (statements are
# immutable; building this one cost more than running it).
_SESSION_AND_USER = (
    select(AuthSession, User)
    .outerjoin(User, User.id == AuthSession.user_id)
    .where(AuthSession.id == bindparam("sid"))
)


def register_jwt_callbacks() -> None:
    @jwt.token_in_blocklist_loader
    def is_revoked(_header: dict, payload: dict) -> bool:
        sid = payload.get("sid")
        if not sid:
            return True
        # The token's user comes along in the same statement and is kept for the request
        # (_user_of), so require_role does not query it a second time.
        row = db.session.execute(_SESSION_AND_USER, {"sid": sid}).first()
        g._wwhd_session_user = row[1] if row is not None else None
        return row is None or row[0].revoked_at is not None

    def _unauthorized(message: str):
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
