"""One input guard for every route: JSON bodies are parsed once, through wwhd.validation's checks.

- `app.json` is a provider whose `loads` is `validation.loads_checked`, so `request.get_json()`
  (and `json_body()`) only ever returns bodies within the depth limit and free of lone surrogates.
- A before-request hook parses every JSON body up front (after the size limit and the rate limiter,
  before any view or schema), so a refused body is a 400 with the usual error shape on every route,
  whichever parser the view uses (webargs/flask-smorest read the raw bytes themselves).
Syntax errors are left to the view, which says "not valid JSON" as before.
"""

from __future__ import annotations

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider

from ..errors import BadRequest
from ..validation import JsonProblem, loads_checked


class GuardedJSONProvider(DefaultJSONProvider):
    def loads(self, s: str | bytes, **kwargs):
        return loads_checked(s, **kwargs)


def init_app(app: Flask) -> None:
    app.json = GuardedJSONProvider(app)

    @app.before_request
    def _guard_json_body():
        if not request.is_json or request.get_json(silent=True) is not None:
            return  # not JSON, or parsed and passed the checks (cached for the view)
        data = request.get_data(cache=True)
        if not data:
            return
        try:
            loads_checked(data)
        except JsonProblem as problem:
            fields = [{"field": problem.field, "message": problem.message}] if problem.field else []
            raise BadRequest(problem.message, fields=fields) from None
        except ValueError:
            return  # not JSON at all (or `null`): the view answers as it always has
