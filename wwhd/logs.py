"""JSON logs on stdout and the X-Request-ID every response carries."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid

from flask import Flask, g, request

REQUEST_ID_HEADER = "X-Request-ID"
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


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
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RequestContextFilter(logging.Filter):
    """Stamps request id and user id (never email) on records logged inside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        from flask import has_request_context

        if has_request_context():
            record.request_id = getattr(record, "request_id", None) or g.get("request_id")
            record.user_id = getattr(record, "user_id", None) or g.get("user_id")
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
    for noisy in ("httpx", "httpcore", "openai", "urllib3", "werkzeug", "alembic.runtime.plugins"):
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
