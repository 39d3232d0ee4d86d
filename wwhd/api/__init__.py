"""HTTP layer: one blueprint per URL area."""

from __future__ import annotations

from flask import Flask, request

from ..errors import BadRequest, ValidationError


def json_body(required: bool = True):
    """The request's JSON object; bad JSON or a non-object is a 400 that says so."""
    if not request.data and not required:
        return {}
    if not request.is_json and request.data:
        raise BadRequest("Send a JSON body with Content-Type: application/json.")
    data = request.get_json(silent=True)
    if data is None:
        raise BadRequest(
            "Request body is not valid JSON."
            if request.data
            else "A JSON request body is required."
        )
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object.")
    return data


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within [low, high]; anything else is a 422 naming it."""
    raw = request.args.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(
            f"Query parameter '{name}' must be a whole number.",
            fields=[{"field": name, "message": "not an integer"}],
        ) from None
    if not low <= value <= high:
        raise ValidationError(
            f"Query parameter '{name}' must be between {low} and {high}.",
            fields=[{"field": name, "message": f"{low}..{high}"}],
        )
    return value


def register_blueprints(app: Flask) -> None:
    from . import auth, chat, conversations, health, me

    app.register_blueprint(health.bp)
    for module in (auth, me, chat, conversations):
        app.register_blueprint(module.bp, url_prefix="/api/v1")
    from . import documents

    app.register_blueprint(documents.bp, url_prefix="/api/v1")
    from . import admin, feedback

    app.register_blueprint(feedback.bp, url_prefix="/api/v1")
    app.register_blueprint(admin.bp, url_prefix="/api/v1")
    from . import openapi

    app.register_blueprint(openapi.bp, url_prefix="/api/v1")
