"""Request rate limits (Flask-Limiter: memory, or Redis when REDIS_URL is set) and daily token quotas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask, current_app, g, request
from flask_jwt_extended import decode_token
from flask_limiter import ApplicationLimit, Limiter

from .errors import QuotaExceeded

# Login, OAuth2 token and register share one stricter per-IP bucket (brute force, account spam).
AUTH_ENDPOINTS = frozenset({"auth.login", "auth.token", "auth.register"})
# The ALB polls /health (liveness, no I/O) every few seconds; CORS preflights are not API calls.
EXEMPT_ENDPOINTS = frozenset({"health.health", "static"})
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
        try:
            claims = decode_token(header[7:].strip())
            if claims.get("role") in ROLE_SETTINGS and claims.get("sub"):
                role, key = claims["role"], f"user:{claims['sub']}"
        except Exception:  # any bad token is simply anonymous here; the view answers 401
            pass
    g._rate_caller = (role, key)
    return role, key


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


def daily_quota(role: str) -> int:
    return int(current_app.config.get(f"DAILY_TOKENS_{role.upper()}", 0) or 0)


def seconds_until_utc_midnight(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - now).total_seconds()))


def check_quota(user) -> None:
    """Raise QuotaExceeded (429 + Retry-After until the UTC day ends) when the user's tokens today reach the role's quota."""
    from .usage import usage_today

    quota = daily_quota(user.role)
    if quota <= 0:
        return
    used = usage_today(user.id)["total_tokens"]
    if used >= quota:
        retry = seconds_until_utc_midnight()
        raise QuotaExceeded(
            f"You have used today's {quota:,} tokens. The quota resets at midnight UTC.",
            headers={"Retry-After": str(retry)},
            extra={"quota": {"limit": quota, "used": used, "reset_in": retry}},
        )
