"""Request rate limits (Flask-Limiter: memory, or Redis when REDIS_URL is set) and daily token quotas."""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app, g, request
from flask_jwt_extended import decode_token
from flask_limiter import ApplicationLimit, Limiter
from limits import parse_many

from .errors import QuotaExceeded
from .extensions import per_app
from .usage import tokens_today

# Login, OAuth2 token and register share one stricter per-IP bucket (brute force, account spam).
AUTH_ENDPOINTS = frozenset({"auth.login", "auth.token", "auth.register", "auth.signup"})
# The ALB polls /health (liveness, no I/O) every few seconds; CORS preflights are not API calls.
EXEMPT_ENDPOINTS = frozenset({"health.health", "static"})
log = logging.getLogger(__name__)
# Bearer tokens the limiter has already verified, per app: token → (exp, role, bucket key).
MAX_KNOWN_TOKENS = 4096
ROLE_SETTINGS = {
    "anonymous": "RATE_LIMIT_ANON",
    "viewer": "RATE_LIMIT_USER",
    "user": "RATE_LIMIT_USER",
    "admin": "RATE_LIMIT_ADMIN",
}


def client_ip() -> str:
    """The caller's address; behind the ALB this is right only with TRUSTED_PROXY_HOPS (ProxyFix)."""
    return request.remote_addr or "unknown"


def caller() -> tuple[str, str]:
    """(role, bucket key) of this request: the user from a valid bearer token, else the client IP.

    Only the signature, expiry, issuer and audience are checked (no DB): a revoked token still
    counts against its user, and the view rejects it anyway.
    """
    cached = g.get("_rate_caller")
    if cached:
        return cached
    role, key = "anonymous", f"ip:{client_ip()}"
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer " and len(header) < 8192:
        role, key = _token_caller(header[7:].strip()) or (role, key)
    g._rate_caller = (role, key)
    return role, key


def _token_caller(token: str) -> tuple[str, str] | None:
    """(role, bucket key) of a valid token, remembered until it expires.

    Why remembered: the view verifies the token again (flask-jwt-extended has no way to share the
    work), and PyJWT checks every character of it in Python: the limiter's decode was 0.13 ms of
    every authenticated request's CPU in-process, 0.3 ms under the profiler in the worker. A token is the same signed claims until its `exp`; a
    token that fails is never remembered, so it fails here every time."""
    known = per_app(current_app._get_current_object(), "wwhd_rate_tokens", dict)
    now = time.time()
    hit = known.get(token)
    if hit is not None and hit[0] > now:
        return hit[1], hit[2]
    try:
        claims = decode_token(token)
    except Exception:  # any bad token is simply anonymous here; the view answers 401
        return None
    if claims.get("role") not in ROLE_SETTINGS or not claims.get("sub"):
        return None
    caller_of = (claims["role"], f"user:{claims['sub']}")
    if isinstance(claims.get("exp"), (int, float)):
        if len(known) >= MAX_KNOWN_TOKENS:  # bounded: forget the expired, or everything
            for stale, (exp, _, _) in list(known.items()):
                if exp <= now:
                    known.pop(stale, None)
            if len(known) >= MAX_KNOWN_TOKENS:
                known.clear()
        known[token] = (claims["exp"], *caller_of)
    return caller_of


def _role_limit() -> str:
    return current_app.config[ROLE_SETTINGS[caller()[0]]]


def _too_many() -> str:
    return "Too many requests. Slow down and retry after the number of seconds in the Retry-After header."


def _too_many_logins() -> str:
    return "Too many sign-in attempts from this address. Retry after the number of seconds in Retry-After."


def init_app(app: Flask) -> Limiter:
    """A Limiter per app (Flask-Limiter keeps its storage on the instance, and tests build many apps)."""
    cfg = app.config
    app.config.setdefault("RATELIMIT_ENABLED", cfg["RATE_LIMIT_ENABLED"])
    storage = cfg["REDIS_URL"] or "memory://"
    limiter = Limiter(
        key_func=lambda: caller()[1],
        application_limits=[
            ApplicationLimit(
                limit_provider=_role_limit,
                key_function=lambda: caller()[1],
                scope="requests",
                error_message=_too_many,
            ),
            ApplicationLimit(
                limit_provider=lambda: cfg["RATE_LIMIT_LOGIN"],
                key_function=lambda: f"ip:{client_ip()}",
                scope="auth",
                error_message=_too_many_logins,
                exempt_when=lambda: request.endpoint not in AUTH_ENDPOINTS,
            ),
        ],
        storage_uri=storage,
        # Redis down must not take the API down: count in memory per process until it is back.
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1}
        if cfg["REDIS_URL"]
        else {},
        in_memory_fallback_enabled=bool(cfg["REDIS_URL"]),
        swallow_errors=True,
        headers_enabled=True,
        strategy="fixed-window",
        key_prefix=cfg["RATE_LIMIT_KEY_PREFIX"],
        # Unmatched URLs (scanners probing for paths) are counted too, under one name.
        request_identifier=lambda: request.endpoint or "unmatched",
    )

    @app.after_request
    def _retry_after_only_on_429(response):
        # Flask-Limiter stamps Retry-After on every response; it only means something on a 429.
        if response.status_code != 429:
            response.headers.pop("Retry-After", None)
        return response

    limiter.request_filter(
        lambda: request.method == "OPTIONS" or request.endpoint in EXEMPT_ENDPOINTS
    )
    limiter.init_app(app)
    app.extensions["wwhd_limiter"] = limiter
    return limiter


# -- per-account login back-off -------------------------------------------------------------------
# Failed sign-ins counted per account (not per IP: a botnet has many) in the limiter's storage, so
# every worker and task sees the same count. While any LOGIN_BACKOFF window is full, the account
# answers every attempt as a wrong password.
def identifier_key(identifier: str) -> str:
    """Back-off key for a login name that matches no account (hashed: bounded, nothing readable)."""
    normalized = identifier.strip().lower().encode("utf-8", "surrogatepass")
    return "name:" + hashlib.sha256(normalized).hexdigest()[:32]


def _backoff():
    limiter = current_app.extensions.get("wwhd_limiter")
    if limiter is None or not current_app.config.get("RATE_LIMIT_ENABLED", True):
        return None, ()
    return limiter.limiter, parse_many(current_app.config["LOGIN_BACKOFF"])


def _backoff_call(method: str, key: str) -> bool:
    strategy, items = _backoff()
    prefix = current_app.config["RATE_LIMIT_KEY_PREFIX"]
    try:
        results = [getattr(strategy, method)(item, prefix, "login-backoff", key) for item in items]
    except Exception as exc:  # storage down: count nothing rather than lock everyone out
        log.warning("login back-off storage unavailable", extra={"error_type": type(exc).__name__})
        return True
    return all(result is not False for result in results)


def login_backoff_active(key: str) -> bool:
    """True while `key` has used up one of its LOGIN_BACKOFF failure allowances."""
    return not _backoff_call("test", key)


def record_login_failure(key: str) -> None:
    _backoff_call("hit", key)


def clear_login_failures(key: str) -> None:
    _backoff_call("clear", key)


def daily_quota(role: str) -> int:
    return int(current_app.config.get(f"DAILY_TOKENS_{role.upper()}", 0) or 0)


def seconds_until_utc_midnight(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - now).total_seconds()))


def check_quota(user) -> None:
    """Raise QuotaExceeded (429 + Retry-After until the UTC day ends) when the user's tokens today reach the role's quota."""
    quota = daily_quota(user.role)
    if quota <= 0:
        return
    used = tokens_today(user.id)
    if used >= quota:
        retry = seconds_until_utc_midnight()
        raise QuotaExceeded(
            f"You have used today's {quota:,} tokens. The quota resets at midnight UTC.",
            headers={"Retry-After": str(retry)},
            extra={"quota": {"limit": quota, "used": used, "reset_in": retry}},
        )
