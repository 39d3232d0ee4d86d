"""ApiError family and the handlers that turn every failure into one JSON error shape."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify
from werkzeug.exceptions import HTTPException

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


def register_error_handlers(app: Flask) -> None:
    from .extensions import db

    @app.errorhandler(ApiError)
    def handle_api_error(err: ApiError):
        return error_response(err.status, err.code, err.message, err.fields, err.headers, err.extra)

    @app.errorhandler(HTTPException)
    def handle_http_exception(err: HTTPException):
        status = err.code or 500
        message = err.description or err.name
        if status == 413:
            message = f"Request body too large (limit {app.config['MAX_CONTENT_LENGTH'] // (1024 * 1024)} MB)."
        headers = {}
        if status == 429 and err.get_response().headers.get("Retry-After"):
            headers["Retry-After"] = err.get_response().headers["Retry-After"]
        if status == 405 and getattr(err, "valid_methods", None):
            headers["Allow"] = ", ".join(err.valid_methods)
        return error_response(
            status, CODES_BY_STATUS.get(status, "HTTP_ERROR"), message, headers=headers
        )

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        # Roll back so the next request on this session starts clean; never leak internals.
        db.session.rollback()
        log.exception("unhandled error", extra={"error_type": type(err).__name__})
        return error_response(
            500, "INTERNAL_ERROR", "Something went wrong on our side. Please try again."
        )
