"""The OpenAPI document matches the routes, and a short schemathesis run finds no 5xx or schema violations."""

from __future__ import annotations

import io
import os
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from tests.conftest import Auth, close_app, make_app
from tests.ops.conftest import FUZZ_KEY


def _openapi_path(rule: str) -> str:
    """/api/v1/documents/<int:document_id> → /api/v1/documents/{document_id}"""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


# The suite's run sends ≥ 2,000 requests; scripts/fuzz sets WWHD_FUZZ_EXAMPLES higher for a longer one.
EXAMPLES = int(os.environ.get("WWHD_FUZZ_EXAMPLES", "25"))
MIN_REQUESTS = int(os.environ.get("WWHD_FUZZ_MIN_REQUESTS", "2000"))
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


# Strings an attacker sends: lone surrogates, bidi overrides, markup, script and data links, SQL,
# NUL and control bytes, traversal, template/JNDI injection, header splitting, huge and astral text.
HOSTILE = [
    "\ud800",
    "a\u202egnp.exe",
    '<script>alert(1)</script>"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "data:text/html,<b>x</b>",
    "' OR 1=1 --",
    "\x00\x01\x1b[31m",
    "../../../../etc/passwd",
    "${jndi:ldap://127.0.0.1/a}{{7*7}}",
    "\r\nSet-Cookie: x=1",
    "\U0001f4a5" * 300,
    "A" * 20000,
    "",
    " ",
]
OPS_RUN = 0  # operations fuzzed, for the terminal summary


@pytest.fixture
def fuzz_app(tmp_path):
    """The app with the samples loaded, so ids in paths can hit something besides 404s."""
    # Per-request access and metric lines would cost more than the requests (pytest captures them).
    app = make_app(tmp_path, LOG_LEVEL="WARNING", METRICS_ENABLED=False)
    result = app.test_cli_runner().invoke(args=["wwhd", "load-samples"])
    assert result.exit_code == 0, result.output
    yield app
    close_app(app)


def _concrete(path: str, w: dict) -> dict:
    """Path parameters that exist in world `w` (the user's chat, a document, a spare user)."""
    values = {
        "chat_id": w["chat_id"],
        "message_id": w["message_id"],
        "document_id": w["document_id"],
        "user_id": w["spare_id"],
        "name": "general",
    }
    return {name: values[name] for name in re.findall(r"{(\w+)}", path)}


def _hostile_variants(kwargs: dict):
    """The valid call with one string field at a time replaced by each hostile string."""
    for where in ("json", "query_string", "data"):
        body = kwargs.get(where)
        if not isinstance(body, dict):
            continue
        for key, value in body.items():
            if not isinstance(value, (str, int, type(None))) or isinstance(value, bool):
                continue
            for bad in HOSTILE:
                if where != "json" and bad == "\ud800":
                    continue  # a URL or form cannot carry a lone surrogate; JSON's \\ud800 can
                yield {**kwargs, where: {**body, key: bad}}


class Tally:
    """What the fuzz run sent and got, per operation."""

    def __init__(self):
        self.requests = 0
        self.by_status: dict[int, int] = {}
        self.ok_ops: set[str] = set()
        self.server_errors: list[str] = []

    def add(self, label: str, status: int, detail: str = "") -> None:
        self.requests += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if status < 300:
            self.ok_ops.add(label)
        if status >= 500:
            self.server_errors.append(f"{label} → {status} {detail[:300]}")


def fuzz(app, examples: int, modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):
    """Every operation: its valid call, that call with hostile strings in each field, then
    schemathesis cases (every other one with path ids that exist, so success paths are reached).

    Each operation gets a fresh world (admin, user with an answered chat, spare account): fuzzing
    may log out, demote, delete or change the password of the accounts it runs as.
    Returns (failures, tally)."""
    from tests.api.test_contract import cases, make_world

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    client = app.test_client()
    auth = Auth(app, client)
    failures: list[str] = []
    tally = Tally()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        world = make_world(client, auth)
        table = {(m, p): (h, kw) for m, p, _url, h, kw in cases(world)}
        key = (operation.method.upper(), operation.path)
        assert key in table, f"{label}: add its valid call to cases() in tests/api/test_contract.py"
        headers, valid = table[key]
        headers = headers or world["user"]
        url = operation.path.format(**_concrete(operation.path, world))
        for kwargs in [valid, *_hostile_variants(valid)]:
            if "file" in kwargs.get("data", {}):  # a file object is read once: a fresh one
                data = dict(kwargs["data"])
                data["file"] = (io.BytesIO(b"[00:00:05] Breathe out."), "talk.txt")
                kwargs = {**kwargs, "data": data}
            reply = client.open(url, method=operation.method.upper(), headers=headers, **kwargs)
            tally.add(label, reply.status_code, reply.get_data(as_text=True))
        real_ids = _concrete(operation.path, make_world(client, auth) if "{" in label else world)

        for mode in modes:
            seen = [0]

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
                seen[0] += 1  # noqa: B023 - run() is called inside this loop iteration
                if real_ids and seen[0] % 2:  # noqa: B023
                    case.path_parameters = {**(case.path_parameters or {}), **real_ids}  # noqa: B023
                response = case.call_and_validate(
                    headers={**headers, **(case.headers or {})},  # noqa: B023
                    checks=CHECKS,
                )
                tally.add(label, response.status_code, response.text)  # noqa: B023

            try:
                run()
            except Unsatisfiable:
                pass  # nothing to make invalid (e.g. no parameters at all in negative mode)
            except (
                Exception,
                BaseExceptionGroup,
            ) as exc:  # schemathesis raises a FailureGroup; report all together
                failures.append(f"{label} [{mode.value}]: {type(exc).__name__}: {str(exc)[:1500]}")
    return failures, tally


@pytest.mark.slow  # 47 s: ≥ 2,000 generated requests
def test_fuzz_api(fuzz_app, request):
    """≥ 2,000 requests over every operation, authenticated, zero 5xx; every operation reaches a
    success answer at least once. The count goes to the terminal summary (tests/ops/conftest.py)."""
    failures, tally = fuzz(fuzz_app, EXAMPLES)
    operations = len(fuzz_app.test_client().get("/api/v1/openapi.json").get_json()["paths"])
    request.config.stash[FUZZ_KEY] = (
        f"fuzz: {tally.requests} requests over {operations} paths, "
        f"{sum(n for s, n in tally.by_status.items() if s < 300)} 2xx, "
        f"{sum(n for s, n in tally.by_status.items() if 400 <= s < 500)} 4xx, "
        f"{sum(n for s, n in tally.by_status.items() if s >= 500)} 5xx"
    )
    assert not tally.server_errors, "\n".join(tally.server_errors[:20])
    assert not failures, "\n\n".join(failures)
    assert tally.requests >= MIN_REQUESTS, tally.requests
    spec = fuzz_app.test_client().get("/api/v1/openapi.json").get_json()
    every = {
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert every <= tally.ok_ops, f"never answered 2xx: {sorted(every - tally.ok_ops)}"
