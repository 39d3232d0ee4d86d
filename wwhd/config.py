"""Settings: the one place that reads the environment."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

DEFAULT_JWT_SECRET = "dev-insecure-change-me"

# Env vars a production deploy must provide (checked by tests/deploy against copilot/api).
# DATABASE_URL may instead arrive as the Aurora addon's DB_SECRET (JSON).
REQUIRED_IN_PRODUCTION = (
    "JWT_SECRET",
    "OPENAI_API_KEY",
    "QDRANT_URL",
    "QDRANT_API_KEY",
    "DB_SECRET",
)


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    return int(raw) if raw else default


def _env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in _env(name, default).split(",") if item.strip()]


def database_url_from_env() -> str:
    """DATABASE_URL, else a PostgreSQL URL built from the Aurora secret JSON, else SQLite under ./data."""
    url = _env("DATABASE_URL")
    if not url and _env("DB_SECRET"):
        secret = json.loads(_env("DB_SECRET"))
        url = "postgresql+psycopg://{u}:{p}@{h}:{port}/{db}".format(
            u=quote(secret["username"], safe=""),
            p=quote(secret["password"], safe=""),
            h=secret["host"],
            port=secret.get("port", 5432),
            db=secret.get("dbname", "wwhd"),
        )
    if not url:
        url = "sqlite:///" + str(Path(_env("DATA_DIR", "data")).resolve() / "wwhd.db")
    # Plain postgres URLs would pick psycopg2, which we do not ship.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Config:
    APP_ENV = "production"
    DEMO_USER = False  # only DevConfig: `make dev` creates printed demo accounts

    def __init__(self) -> None:
        self.LOG_LEVEL = _env("LOG_LEVEL", "INFO")
        self.VERSION = _env("APP_VERSION", "0.1.0")
        self.DATA_DIR = _env("DATA_DIR", "data")
        self.SQLALCHEMY_DATABASE_URI = database_url_from_env()
        # pre_ping: a connection dropped by a database restart is replaced, not handed to a request.
        # hide_parameters: error messages (and so logs) never carry e-mails, hashes or message text.
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "hide_parameters": True}
        self.QDRANT_URL = _env("QDRANT_URL")
        self.QDRANT_API_KEY = _env("QDRANT_API_KEY")
        self.QDRANT_PATH = _env("QDRANT_PATH", str(Path(self.DATA_DIR) / "qdrant"))
        self.QDRANT_COLLECTION = _env("QDRANT_COLLECTION", "wwhd_chunks")
        self.OPENAI_API_KEY = _env("OPENAI_API_KEY")
        self.OPENAI_BASE_URL = _env("OPENAI_BASE_URL")
        self.MODEL_CHAT = _env("MODEL_CHAT", "gpt-4o-mini")
        self.MODEL_EMBED = _env("MODEL_EMBED")
        self.EMBED_DIM = _env_int("EMBED_DIM", 0)  # 0: learn it from the first embedding
        self.LLM_TIMEOUT_S = _env_int("LLM_TIMEOUT_S", 60)
        self.LLM_MAX_RETRIES = _env_int("LLM_MAX_RETRIES", 2)
        # direct: stream the answer's raw chunks through langchain-openai's openai client (a tenth
        # of the CPU per token); langchain: ChatOpenAI.stream (wwhd/providers/openai_compat.py).
        self.LLM_STREAM_MODE = _env("LLM_STREAM_MODE", "direct").strip().lower()
        self.JWT_SECRET = _env("JWT_SECRET", DEFAULT_JWT_SECRET)
        self.JWT_ISSUER = _env("JWT_ISSUER", "wwhd")
        self.JWT_AUDIENCE = _env("JWT_AUDIENCE", "wwhd-users")
        self.ACCESS_TOKEN_MINUTES = _env_int("ACCESS_TOKEN_MINUTES", 60)
        self.REFRESH_TOKEN_DAYS = _env_int("REFRESH_TOKEN_DAYS", 30)
        self.ALLOW_ORIGINS = _env_list("ALLOW_ORIGINS", "http://localhost:3000")
        self.REDIS_URL = _env("REDIS_URL")
        self.UPLOADS_BUCKET_NAME = _env("UPLOADS_BUCKET_NAME")
        self.UPLOAD_DIR = _env("UPLOAD_DIR", str(Path(self.DATA_DIR) / "uploads"))
        self.MAX_UPLOAD_MB = _env_int("MAX_UPLOAD_MB", 10)
        # Ingestion jobs: worker threads per process, heartbeat period, and how old a heartbeat
        # must be before another process treats the job as dead and takes it over.
        self.JOB_WORKERS = _env_int("JOB_WORKERS", 2)
        self.JOB_HEARTBEAT_SECONDS = _env_int("JOB_HEARTBEAT_SECONDS", 10)
        self.JOB_STALE_SECONDS = _env_int("JOB_STALE_SECONDS", 60)
        self.JOB_MAX_ATTEMPTS = _env_int("JOB_MAX_ATTEMPTS", 3)
        # auto: a job parses, chunks and embeds in a child process under gunicorn's gevent worker
        # (its GIL and heap stay the worker's own), in-process elsewhere; always | never.
        self.INGEST_IN_CHILD = _env("INGEST_IN_CHILD", "auto")
        # The served app starts the job runner and heals the index from SQL at start-up, then
        # checks it (points per document checksum vs chunk rows) every INDEX_CHECK_SECONDS (0: off).
        self.JOBS_AUTOSTART = _env("JOBS_AUTOSTART", "1") not in ("0", "false", "no")
        self.INDEX_CHECK_SECONDS = _env_int("INDEX_CHECK_SECONDS", 300)
        self.MAX_MESSAGE_CHARS = _env_int("MAX_MESSAGE_CHARS", 4000)
        self.SSE_PING_SECONDS = _env_int("SSE_PING_SECONDS", 15)
        # Tokens arriving within this many ms go out as one `token` frame (0: one frame each;
        # capped at 25 ms so a token never waits longer).
        self.SSE_COALESCE_MS = _env_int("SSE_COALESCE_MS", 10)
        # A turn's events are kept this long after its last one, for resuming with Last-Event-ID
        # (in memory, or in REDIS_URL so a reconnect to another task finds them).
        self.STREAM_TTL_SECONDS = _env_int("STREAM_TTL_SECONDS", 300)
        # With no client reading, a turn keeps generating this long, then stops as `interrupted`.
        self.STREAM_GRACE_SECONDS = _env_int("STREAM_GRACE_SECONDS", 30)
        # No turn runs longer: the lease after which a `streaming` answer is known to be orphaned
        # (its worker died) and is closed as `interrupted` (wwhd/stuck_turns.py).
        self.TURN_MAX_SECONDS = _env_int("TURN_MAX_SECONDS", 300)
        self.STUCK_TURN_CHECK_SECONDS = _env_int("STUCK_TURN_CHECK_SECONDS", 60)
        # Requests per caller (user id when signed in, else client IP), by role; `limits` notation.
        self.RATE_LIMIT_ENABLED = _env("RATE_LIMIT_ENABLED", "1") not in ("0", "false", "no")
        self.RATE_LIMIT_ANON = _env("RATE_LIMIT_ANON", "10/minute")
        self.RATE_LIMIT_USER = _env("RATE_LIMIT_USER", "60/minute")
        self.RATE_LIMIT_ADMIN = _env("RATE_LIMIT_ADMIN", "600/minute")
        # Per client IP on login, OAuth2 token and register (brute force, account spam).
        self.RATE_LIMIT_LOGIN = _env("RATE_LIMIT_LOGIN", "10/minute;50/hour")
        self.RATE_LIMIT_KEY_PREFIX = _env("RATE_LIMIT_KEY_PREFIX", "wwhd")
        # Failed sign-ins per account before it backs off (each window must pass to try again).
        self.LOGIN_BACKOFF = _env("LOGIN_BACKOFF", "5 per 15 minutes;20 per day")
        # Tokens (prompt + completion) per user per UTC day; 0 means no quota.
        self.DAILY_TOKENS_VIEWER = _env_int("DAILY_TOKENS_VIEWER", 0)
        self.DAILY_TOKENS_USER = _env_int("DAILY_TOKENS_USER", 200_000)
        self.DAILY_TOKENS_ADMIN = _env_int("DAILY_TOKENS_ADMIN", 2_000_000)
        # Proxies in front of the app that append X-Forwarded-For (the ALB: 1). 0 trusts none.
        self.TRUSTED_PROXY_HOPS = _env_int("TRUSTED_PROXY_HOPS", 0)
        self.HSTS_SECONDS = _env_int("HSTS_SECONDS", 0)
        # JSON bodies are small; uploads (multipart, /documents) keep MAX_CONTENT_LENGTH.
        self.MAX_JSON_BYTES = _env_int("MAX_JSON_BYTES", 1024 * 1024)
        self.METRICS_ENABLED = _env("METRICS_ENABLED", "1") not in ("0", "false", "no")
        self.METRICS_NAMESPACE = _env("METRICS_NAMESPACE", "WWHD/API")
        # The Environment dimension must match the alarms' `Env` (Copilot's environment name).
        self.METRICS_ENVIRONMENT = (
            _env("METRICS_ENVIRONMENT") or _env("COPILOT_ENVIRONMENT_NAME") or self.APP_ENV
        )
        # argon2id cost; tests lower it so a suite of logins stays fast.
        self.ARGON2_TIME_COST = _env_int("ARGON2_TIME_COST", 3)
        self.ARGON2_MEMORY_KIB = _env_int("ARGON2_MEMORY_KIB", 65536)
        self.tune()
        self._apply_jwt()
        self._apply_body_limits()

    def tune(self) -> None:
        """Per-environment adjustments made after the environment is read."""

    def _apply_jwt(self) -> None:
        # flask-jwt-extended reads these names.
        self.JWT_SECRET_KEY = self.JWT_SECRET
        self.JWT_ALGORITHM = "HS256"
        self.JWT_DECODE_ALGORITHMS = ["HS256"]
        self.JWT_ENCODE_ISSUER = self.JWT_DECODE_ISSUER = self.JWT_ISSUER
        self.JWT_ENCODE_AUDIENCE = self.JWT_DECODE_AUDIENCE = self.JWT_AUDIENCE
        self.JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=self.ACCESS_TOKEN_MINUTES)
        self.JWT_REFRESH_TOKEN_EXPIRES = timedelta(days=self.REFRESH_TOKEN_DAYS)
        self.JWT_TOKEN_LOCATION = ["headers"]

    def _apply_body_limits(self) -> None:
        # Flask's hard cap on any request body: one file of MAX_UPLOAD_MB plus 1 MB for the
        # multipart boundaries and form fields. JSON bodies get MAX_JSON_BYTES (wwhd/security.py).
        self.MAX_CONTENT_LENGTH = (self.MAX_UPLOAD_MB + 1) * 1024 * 1024

    @property
    def provider(self) -> str:
        return "openai" if (self.OPENAI_API_KEY or self.OPENAI_BASE_URL) else "offline"

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in dir(self) if k.isupper()}


class DevConfig(Config):
    APP_ENV = "dev"
    DEMO_USER = True


class TestingConfig(Config):
    APP_ENV = "testing"
    TESTING = True
    DEMO_USER = False

    def tune(self) -> None:
        self.JOBS_AUTOSTART = False  # tests start the runner when they mean to
        self.ARGON2_TIME_COST = 1
        self.ARGON2_MEMORY_KIB = 8192
        # Limits stay on in tests, high enough that only tests that lower them are throttled.
        self.RATE_LIMIT_ANON = self.RATE_LIMIT_USER = self.RATE_LIMIT_ADMIN = "100000/minute"
        self.RATE_LIMIT_LOGIN = "100000/minute"


class StagingConfig(Config):
    APP_ENV = "staging"
    DEMO_USER = False

    def tune(self) -> None:
        # Behind the ALB over HTTPS: trust its one X-Forwarded-For hop and pin browsers to HTTPS.
        self.TRUSTED_PROXY_HOPS = _env_int("TRUSTED_PROXY_HOPS", 1)
        self.HSTS_SECONDS = _env_int("HSTS_SECONDS", 31_536_000)


class ProductionConfig(StagingConfig):
    APP_ENV = "production"


CONFIGS = {
    "dev": DevConfig,
    "development": DevConfig,
    "testing": TestingConfig,
    "test": TestingConfig,
    "staging": StagingConfig,
    "production": ProductionConfig,
    "prod": ProductionConfig,
}


def load_config(overrides: dict | None = None) -> dict:
    """Pick the class by APP_ENV (or overrides["APP_ENV"]), apply overrides, and refuse unsafe production setups.

    Unset APP_ENV means production: an image or a shell that forgot to say otherwise gets the
    strict rules (real JWT_SECRET, no demo users); the lax dev settings must be asked for.
    """
    overrides = dict(overrides or {})
    env = str(overrides.get("APP_ENV") or _env("APP_ENV", "production")).lower()
    if env not in CONFIGS:
        raise RuntimeError(f"APP_ENV={env!r} is not one of {sorted(set(CONFIGS))}")
    config = CONFIGS[env]()
    for key, value in overrides.items():
        setattr(config, key, value)
    if "DATABASE_URL" in overrides:
        config.SQLALCHEMY_DATABASE_URI = overrides["DATABASE_URL"]
    if (
        str(config.SQLALCHEMY_DATABASE_URI).startswith("sqlite")
        and "SQLALCHEMY_ENGINE_OPTIONS" not in overrides
    ):
        # A SQLite file is never "dropped by a restart": the pre-ping would only add a statement
        # to every connection checkout (two per chat turn).
        config.SQLALCHEMY_ENGINE_OPTIONS = {
            **config.SQLALCHEMY_ENGINE_OPTIONS,
            "pool_pre_ping": False,
        }
    config._apply_jwt()
    if "MAX_CONTENT_LENGTH" not in overrides:
        config._apply_body_limits()  # follows an overridden MAX_UPLOAD_MB
    settings = config.as_dict()
    settings["PROVIDER"] = config.provider
    if settings["LLM_STREAM_MODE"] not in ("direct", "langchain"):
        raise RuntimeError(
            f"LLM_STREAM_MODE={settings['LLM_STREAM_MODE']!r} is not 'direct' or 'langchain'"
        )
    if config.APP_ENV in ("production", "staging"):
        secret = config.JWT_SECRET
        if not secret or secret == DEFAULT_JWT_SECRET or len(secret) < 32:
            raise RuntimeError(
                f"APP_ENV={config.APP_ENV} refuses to start: JWT_SECRET is missing, the dev default, "
                "or shorter than 32 characters. Set a long random JWT_SECRET (e.g. from Secrets "
                "Manager), or APP_ENV=dev on a development machine (unset APP_ENV is production)."
            )
    return settings
