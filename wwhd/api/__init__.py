"""HTTP layer: one blueprint per URL area, each operation described by schemas (api/schemas.py).

flask-smorest turns the schemas into request validation, response serialization and the OpenAPI
document at /api/v1/openapi.json; errors keep the one shape of errors.py (PRODUCT.md §3).
"""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint as SmorestBlueprint
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict

from ..errors import BadRequest, ValidationError

SSE = {
    "description": "Server-sent events: start, citation, token…, metadata, done (or error)",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}
PUBLIC: list = []  # `@bp.doc(security=PUBLIC)`: no token needed


def json_body(required: bool = True):
    """The request's JSON object; bad JSON or a non-object is a 400 that says so."""
    if not request.data and not required:
        return {}
    if not request.is_json and request.data:
        raise BadRequest("Send a JSON body with Content-Type: application/json.")
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        raise BadRequest("Request body is nested too deeply.") from None
    if data is None:
        raise BadRequest(
            "Request body is not valid JSON."
            if request.data
            else "A JSON request body is required."
        )
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object.")
    if not _valid_strings(data):
        raise BadRequest("Request body contains text that is not valid Unicode (a lone surrogate).")
    return data


def _valid_strings(value) -> bool:
    """No lone surrogates ("\\ud800" is valid JSON but not text the database can store).
    Iterative: the body may be nested nearly as deep as the JSON parser allows."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _flatten(messages, prefix: str = "") -> list[dict]:
    """marshmallow's {"title": ["Missing data…"], "tags": {"0": [...]}} → [{field, message}]."""
    out: list[dict] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out += _flatten(value, "" if key == "_schema" and not prefix else name)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out.append({"field": prefix or "body", "message": " ".join(messages)})
    else:
        for item in messages if isinstance(messages, list) else [messages]:
            out += _flatten(item, prefix)
    return out


class Parser(FlaskParser):
    """webargs with our error shape: a JSON body must be a JSON object (400 otherwise) and a
    schema violation is a 422 whose `fields` name each bad field."""

    def load_json(self, req, schema):
        return json_body()

    def load_files(self, req, schema):
        # A multipart body is documented and validated as one schema: its files and its fields.
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        messages = error.messages
        if isinstance(messages, dict) and len(messages) == 1:
            (location,) = messages  # {"json": {...}}: the location is implied by the operation
            if location in self.__location_map__:
                messages = messages[location]
        fields = _flatten(messages)
        detail = "; ".join(f"Field '{f['field']}': {f['message']}" for f in fields)
        raise ValidationError(detail or "The request is invalid.", fields=fields)


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = Parser()
