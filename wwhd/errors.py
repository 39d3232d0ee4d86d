"""ApiError family and the handlers that turn every failure into one JSON error shape."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, jsonify, request
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from .extensions import db

log = logging.getLogger(__name__)

CODES_BY_STATUS = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


class ApiError(Exception):
    status = 400
    code = "VALIDATION_ERROR"

    def __init__(
        self,
        message: str,
        *,
        fields: list[dict] | None = None,
        status: int | None = None,
        code: str | None = None,
        headers: dict | None = None,
        extra: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.fields = fields or []
        self.status = status or self.status
        self.code = code or self.code
        self.headers = headers or {}
        self.extra = extra or {}


class ValidationError(ApiError):
    status, code = 422, "VALIDATION_ERROR"


class BadRequest(ApiError):
    status, code = 400, "VALIDATION_ERROR"


class Unauthorized(ApiError):
    status, code = 401, "UNAUTHORIZED"


class Forbidden(ApiError):
    status, code = 403, "FORBIDDEN"


class NotFound(ApiError):
    status, code = 404, "NOT_FOUND"


class Conflict(ApiError):
    status, code = 409, "CONFLICT"


class PayloadTooLarge(ApiError):
    status, code = 413, "PAYLOAD_TOO_LARGE"


class QuotaExceeded(ApiError):
    status, code = 429, "QUOTA_EXCEEDED"


class ServiceUnavailable(ApiError):
    status, code = 503, "SERVICE_UNAVAILABLE"


def error_body(
    status: int, code: str, message: str, fields: list | None = None, extra: dict | None = None
) -> dict:
    """The one error shape: `detail` for the existing frontend, `error` for everything else."""
    body = {
        "detail": message,
        "error": {
            "code": code,
            "message": message,
            "fields": fields or [],
            "request_id": g.get("request_id"),
        },
    }
    body.update(extra or {})
    return body


def error_response(
    status: int,
    code: str,
    message: str,
    fields: list | None = None,
    headers: dict | None = None,
    extra: dict | None = None,
):
    response = jsonify(error_body(status, code, message, fields, extra))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _megabytes(size: int) -> str:
    mib = size / (1024 * 1024)
    return f"{mib:.0f} MB" if mib >= 1 and mib == int(mib) else f"{size:,} bytes"


def too_large_message() -> str:
    """The limit this request hit, in words: the JSON body limit, the upload limit, or a form field."""
    config = current_app.config
    limit = request.max_content_length  # this request's cap (security.py lowers it for JSON)
    length = request.content_length
    if limit is not None and length is not None and length <= limit:
        # The body fit; werkzeug's multipart parser refused a text field or the number of parts.
        return (
            "A form field is too large or there are too many form parts (limits: "
            f"{_megabytes(int(config.get('MAX_FORM_MEMORY_SIZE') or 0))} per text field, "
            f"{config.get('MAX_FORM_PARTS')} parts); send the document itself as the 'file' part."
        )
    if limit is not None and limit < config["MAX_CONTENT_LENGTH"]:
        return (
            f"Request body too large: JSON bodies are limited to {_megabytes(limit)} "
            "(MAX_JSON_BYTES). Send documents to /api/v1/documents/upload."
        )
    return (
        f"Request body too large (limit {_megabytes(config['MAX_CONTENT_LENGTH'])}): a file may "
        f"be up to {config['MAX_UPLOAD_MB']} MB (MAX_UPLOAD_MB)."
    )


def db_error_fields(err: Exception) -> dict:
    """What may be logged about a database error: its class, SQLSTATE and constraint name.

    Never the message: PostgreSQL's DETAIL repeats the offending values ("Key (email)=(…)"), and
    the statement's parameters carry e-mails, password hashes and message text.
    """
    orig = getattr(err, "orig", None)
    diag = getattr(orig, "diag", None)
    fields = {
        "error_type": type(err).__name__,
        "db_error": type(orig).__name__ if orig is not None else None,
        "sqlstate": getattr(orig, "sqlstate", None),
        "constraint": getattr(diag, "constraint_name", None),
    }
    if fields["constraint"] is None and orig is not None and orig.args:
        # SQLite names the columns, never the values: "UNIQUE constraint failed: users.email".
        message = str(orig.args[0])
        if message.startswith(("UNIQUE constraint failed", "NOT NULL constraint failed")):
            fields["constraint"] = message.split(":", 1)[-1].strip()[:200]
        elif message in ("database is locked", "FOREIGN KEY constraint failed"):
            fields["constraint"] = message
    return fields


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def handle_api_error(err: ApiError):
        return error_response(err.status, err.code, err.message, err.fields, err.headers, err.extra)

    @app.errorhandler(HTTPException)
    def handle_http_exception(err: HTTPException):
        status = err.code or 500
        message = err.description or err.name
        if status == 413:
            message = too_large_message()
        headers = {}
        if status == 429 and err.get_response().headers.get("Retry-After"):
            headers["Retry-After"] = err.get_response().headers["Retry-After"]
        if status == 405 and getattr(err, "valid_methods", None):
            headers["Allow"] = ", ".join(err.valid_methods)
        return error_response(
            status, CODES_BY_STATUS.get(status, "HTTP_ERROR"), message, headers=headers
        )

    # A unique key taken by a concurrent request (or already there): whoever wins the race keeps
    # the row, everyone else gets a 409. Views with a better answer (duplicate upload, repeated
    # feedback) catch the error themselves; this is the floor under all the others.
    @app.errorhandler(IntegrityError)
    def handle_integrity_error(err: IntegrityError):
        db.session.rollback()
        log.warning("integrity conflict", extra=db_error_fields(err))
        return error_response(
            409,
            "CONFLICT",
            "This conflicts with existing data or with a change made at the same moment. "
            "Reload and try again.",
        )

    @app.errorhandler(DataError)
    def handle_data_error(err: DataError):
        # A value the column cannot hold (a number out of range, a malformed string).
        db.session.rollback()
        log.warning("value rejected by the database", extra=db_error_fields(err))
        return error_response(
            422, "VALIDATION_ERROR", "A value in the request is out of range or malformed."
        )

    @app.errorhandler(OperationalError)
    def handle_operational_error(err: OperationalError):
        # Lock timeouts and dropped connections are transient: say so and let the client retry.
        db.session.rollback()
        log.error("database unavailable", extra=db_error_fields(err))
        return error_response(
            503,
            "SERVICE_UNAVAILABLE",
            "The database is busy or unreachable. Please retry in a moment.",
            headers={"Retry-After": "1"},
        )

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        # Roll back so the next request on this session starts clean; never leak internals.
        db.session.rollback()
        log.exception("unhandled error", extra={"error_type": type(err).__name__})
        return error_response(
            500, "INTERNAL_ERROR", "Something went wrong on our side. Please try again."
        )
