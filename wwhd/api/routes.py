"""The API object: every blueprint registered once, under /api/v1, with the generated OpenAPI document.

Its own module because the blueprints import `Blueprint` and `schemas` from the package
(wwhd/api/__init__.py): the package cannot import them back without a cycle.
"""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from . import admin, auth, chat, conversations, docs, documents, feedback, health, me, schemas


class WwhdApi(Api):
    ERROR_SCHEMA = schemas.Error

    def _register_error_handlers(self):
        pass  # errors.py owns every error response


def register_blueprints(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "WWHD API")
    app.config.setdefault("API_VERSION", app.config["VERSION"])
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "info": {
                "description": "What Would Herman Do? Answers grounded in the teacher's own "
                "material. Errors are JSON `{detail, error: {code, message, fields, request_id}}`; "
                "429s carry Retry-After."
            },
            "servers": [{"url": "/"}],
            "security": [{"bearer": []}],
            "components": {
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                }
            },
        },
    )
    api = WwhdApi()
    with app.app_context():  # schemas read limits from config (MAX_MESSAGE_CHARS)
        api.init_app(app)
        api.register_blueprint(health.bp)
        for module in (auth, me, chat, conversations, documents, feedback, admin):
            api.register_blueprint(module.bp, url_prefix="/api/v1")
    app.register_blueprint(docs.bp, url_prefix="/api/v1")
    app.extensions["wwhd_api"] = api
