"""The OpenAPI document matches the routes, and a short schemathesis run finds no 5xx or schema violations."""

from __future__ import annotations

import os
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from tests.conftest import Auth, close_app, make_app


def _openapi_path(rule: str) -> str:
    """/api/v1/documents/<int:document_id> → /api/v1/documents/{document_id}"""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


# The short form runs in the suite; scripts/fuzz sets WWHD_FUZZ_EXAMPLES higher for the long form.
EXAMPLES = int(os.environ.get("WWHD_FUZZ_EXAMPLES", "5"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def test_openapi_document_describes_every_api_route(client):
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    body = spec.get_json()
    assert body["openapi"].startswith("3.1")
    documented = {
        (path, method.upper())
        for path, item in body["paths"].items()
        for method in item
        if method != "parameters"
    }
    served = set()
    for rule in client.application.url_map.iter_rules():
        path = _openapi_path(rule.rule)
        if path in ("/static/{filename}", "/api/v1/openapi.json", "/api/v1/docs"):
            continue
        if path.rstrip("/") + "/" in body["paths"] and path not in body["paths"]:
            continue  # /documents and /documents/ are one resource; the spec names the trailing-slash form
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((path, method))
    missing = served - documented
    assert not missing, f"routes missing from /api/v1/openapi.json: {sorted(missing)}"
    assert documented <= served | {(p, m) for p, m in documented if p.endswith("/")}


def test_openapi_document_is_valid_openapi(client):
    schema = schemathesis.openapi.from_dict(client.get("/api/v1/openapi.json").get_json())
    operations = list(schema.get_all_operations())
    assert len(operations) >= 20
    for result in operations:
        result.ok()  # raises when an operation cannot be parsed


def test_docs_page_is_html_with_a_nonce_csp(client):
    reply = client.get("/api/v1/docs")
    assert reply.status_code == 200 and reply.mimetype == "text/html"
    html = reply.get_data(as_text=True)
    assert "openapi.json" in html
    csp = reply.headers["Content-Security-Policy"]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert html.count(f'nonce="{nonce}"') == 2 and "unsafe-inline" not in csp
    assert reply.headers["X-Frame-Options"] == "DENY"


@pytest.fixture
def fuzz_app(tmp_path):
    """The app with the samples and one answered chat, so ids in paths can hit something besides 404s."""
    app = make_app(tmp_path)
    result = app.test_cli_runner().invoke(args=["wwhd", "load-samples"])
    assert result.exit_code == 0, result.output
    client = app.test_client()
    client.post(
        "/api/v1/chat",
        json={"content": "How do I stop fighting about money?"},
        headers=Auth(app, client).headers("user"),
    )
    yield app
    close_app(app)


def fuzz(app, examples: int, modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE)) -> list[str]:
    """Run every operation through schemathesis; return failure descriptions (empty when all checks pass).

    Each operation gets a fresh admin: fuzzing may log out, demote or disable the account it runs as.
    """
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    client = app.test_client()
    auth = Auth(app, client)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        headers = auth.headers("admin")

        for mode in modes:

            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                case.call_and_validate(headers={**headers, **(case.headers or {})}, checks=CHECKS)  # noqa: B023 - run() is called inside this loop iteration

            try:
                run()
            except Unsatisfiable:
                pass  # nothing to make invalid (e.g. no parameters at all in negative mode)
            except (
                Exception,
                BaseExceptionGroup,
            ) as exc:  # schemathesis raises a FailureGroup; report all together
                failures.append(
                    f"{operation.label} [{mode.value}]: {type(exc).__name__}: {str(exc)[:1500]}"
                )
    return failures


def test_fuzz_api_short_run(fuzz_app):
    failures = fuzz(fuzz_app, EXAMPLES)
    assert not failures, "\n\n".join(failures)
