"""CORS from ALLOW_ORIGINS (exact origins only) and the security headers every response carries."""

from __future__ import annotations

import pytest

from tests.conftest import close_app, make_app
from wwhd.extensions import db

FRONTEND = "https://wwhd.amplifyapp.com"
LOCAL = "http://localhost:3000"
EXPOSED = {
    "x-request-id",
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
}


@pytest.fixture
def cors_app(tmp_path):
    app = make_app(tmp_path, ALLOW_ORIGINS=[FRONTEND, LOCAL])
    yield app
    close_app(app)


def cors_headers(reply) -> dict:
    return {
        k.lower(): v for k, v in reply.headers.items() if k.lower().startswith("access-control-")
    }


@pytest.mark.parametrize("origin", [FRONTEND, LOCAL])
def test_listed_origins_get_credentials_and_exposed_headers(cors_app, origin):
    client = cors_app.test_client()
    for reply in (
        client.get("/health", headers={"Origin": origin}),
        client.get("/api/v1/chats", headers={"Origin": origin}),
    ):  # errors are readable cross-origin too
        headers = cors_headers(reply)
        assert headers["access-control-allow-origin"] == origin  # the exact origin, never "*"
        assert headers["access-control-allow-credentials"] == "true"
        assert {
            h.strip().lower() for h in headers["access-control-expose-headers"].split(",")
        } >= EXPOSED
        assert "Origin" in reply.headers.get("Vary", "")


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        f"{FRONTEND}.evil.example",
        "https://wwhdxamplifyapp.com",
        "http://wwhd.amplifyapp.com",
        "https://localhost:3000",
        "null",
    ],
)
def test_unlisted_origins_get_no_cors_headers(cors_app, origin):
    client = cors_app.test_client()
    assert cors_headers(client.get("/health", headers={"Origin": origin})) == {}
    preflight = client.options(
        "/api/v1/chat/stream",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert cors_headers(preflight) == {}


def test_requests_without_origin_get_no_cors_headers(cors_app):
    assert cors_headers(cors_app.test_client().get("/health")) == {}


def test_preflight_is_allowed_and_cached(cors_app):
    client = cors_app.test_client()
    reply = client.options(
        "/api/v1/chat/stream",
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-request-id",
        },
    )
    assert reply.status_code == 200
    headers = cors_headers(reply)
    assert headers["access-control-allow-origin"] == FRONTEND
    assert headers["access-control-allow-credentials"] == "true"
    assert "POST" in headers["access-control-allow-methods"]
    assert {h.strip() for h in headers["access-control-allow-headers"].lower().split(",")} >= {
        "authorization",
        "content-type",
        "x-request-id",
    }
    assert int(headers["access-control-max-age"]) >= 600
    # A preflight is not an API call: it does not use up the caller's rate limit.
    assert "X-RateLimit-Remaining" not in reply.headers


def test_preflights_are_never_rate_limited(tmp_path):
    app = make_app(tmp_path, ALLOW_ORIGINS=[FRONTEND], RATE_LIMIT_ANON="1/minute")
    client = app.test_client()
    for _ in range(5):
        reply = client.options(
            "/api/v1/chat", headers={"Origin": FRONTEND, "Access-Control-Request-Method": "POST"}
        )
        assert reply.status_code == 200
    with app.app_context():
        db.engine.dispose()


BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def test_security_headers_on_every_kind_of_response(client, auth):
    headers = auth.headers("user")
    replies = [
        client.get("/health"),
        client.get("/api/v1/chats", headers=headers),
        client.get("/api/v1/chats"),
        client.get("/no/such/path"),
        client.delete("/health"),
        client.post("/api/v1/chat", data="{", content_type="application/json", headers=headers),
        client.post("/api/v1/chat/stream", json={"content": "hello"}, headers=headers),
    ]
    for reply in replies:
        for name, value in BASE_HEADERS.items():
            assert reply.headers.get(name) == value, (reply.status_code, name)
        assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
        assert "Strict-Transport-Security" not in reply.headers  # testing runs over plain HTTP
        assert reply.headers["X-Request-ID"]


def test_hsts_in_production(tmp_path):
    app = make_app(tmp_path, APP_ENV="production")
    reply = app.test_client().get("/health")
    assert reply.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "includeSubDomains" in reply.headers["Strict-Transport-Security"]
    for name, value in BASE_HEADERS.items():
        assert reply.headers[name] == value
    with app.app_context():
        db.engine.dispose()


def test_html_pages_get_a_nonce_csp(app, client):
    from flask import render_template_string

    from wwhd.security import csp_nonce

    @app.get("/__page")
    def page():
        return render_template_string("<script nonce='{{ n }}'>1</script>", n=csp_nonce())

    reply = client.get("/__page")
    csp = reply.headers["Content-Security-Policy"]
    nonce = reply.get_data(as_text=True).split("nonce='")[1].split("'")[0]
    assert f"script-src 'nonce-{nonce}'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert (
        client.get("/__page").headers["Content-Security-Policy"] != csp
    )  # a fresh nonce per response
