"""JSON logs on stdout and the X-Request-ID every response carries."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
import traceback
import uuid

from flask import Flask, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Database errors repeat what they reject: the statement's parameters (e-mails, password hashes,
# message text) and PostgreSQL's DETAIL ("Key (email)=(…) already exists").
_DB_ERROR_MODULES = ("sqlalchemy", "psycopg", "sqlite3")


def _exception_chain(value: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    while value is not None and value not in chain:
        chain.append(value)
        value = value.__cause__ or (None if value.__suppress_context__ else value.__context__)
    return list(reversed(chain))


def format_exception_safely(value: BaseException) -> str:
    """A traceback like logging's, except that database errors keep only their class name."""
    text = ""
    for exc in _exception_chain(value):
        name = f"{type(exc).__module__}.{type(exc).__qualname__}"
        if type(exc).__module__.split(".")[0] in _DB_ERROR_MODULES:
            summary = f"{name}: [message withheld: it can carry the values of the statement]"
        else:
            summary = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
        frames = "".join(traceback.format_tb(exc.__traceback__))
        if text:
            text += (
                "\n\nThe above exception was the direct cause of the following exception:\n\n"
                if exc.__cause__ is not None
                else "\n\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        text += f"Traceback (most recent call last):\n{frames}{summary}"
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = format_exception_safely(record.exc_info[1])
        return json.dumps(entry, default=str)


# Work a request hands to a thread of its own (a chat turn) has no request context: the thread
# binds the request's ids here, and the filter reads them when there is no request.
_bound: contextvars.ContextVar[dict | None] = contextvars.ContextVar("wwhd_log_ids", default=None)


def request_ids() -> dict:
    """The current request's ids, to hand to a thread that logs on its behalf (see bind_ids)."""
    return {"request_id": g.get("request_id"), "user_id": g.get("user_id")}


def bind_ids(ids: dict) -> None:
    """Stamp these ids on what the calling thread logs (threads start with nothing bound)."""
    _bound.set(dict(ids))


class RequestContextFilter(logging.Filter):
    """Stamps request id and user id (never email) on records logged inside a request, or in a
    thread that bound its request's ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            ids = {"request_id": g.get("request_id"), "user_id": g.get("user_id")}
        else:
            ids = _bound.get()
        if ids:
            record.request_id = getattr(record, "request_id", None) or ids.get("request_id")
            record.user_id = getattr(record, "user_id", None) or ids.get("user_id")
        return True


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_wwhd", False) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    handler._wwhd = True
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in (
        "httpx",
        "httpx2",
        "httpcore",
        "httpcore2",
        "openai",
        "urllib3",
        "werkzeug",
        "alembic.runtime.plugins",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _clean_request_id(raw: str | None) -> str:
    if raw and len(raw) <= 128 and all(c.isalnum() or c in "-_.:" for c in raw):
        return raw
    return uuid.uuid4().hex


def init_app(app: Flask) -> None:
    configure_logging(app.config["LOG_LEVEL"])
    access = logging.getLogger("wwhd.access")

    @app.before_request
    def _start():
        g.request_id = _clean_request_id(request.headers.get(REQUEST_ID_HEADER))
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):
        response.headers[REQUEST_ID_HEADER] = g.get("request_id") or uuid.uuid4().hex
        latency_ms = round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2)
        route = request.url_rule.rule if request.url_rule else "unmatched"
        access.info(
            "request",
            extra={
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "latency_ms": latency_ms,
            },
        )
        return response
