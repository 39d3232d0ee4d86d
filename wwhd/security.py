"""Security headers on every response, JSON body size limits, and the proxy hops we trust."""

from __future__ import annotations

import secrets

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

# An API response is never a page: nothing in it may load, run or be framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# HTML pages (the API docs) run only scripts and styles carrying this response's nonce.
PAGE_CSP = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def csp_nonce() -> str:
    """A per-response nonce for inline <script>/<style> on HTML pages."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def init_app(app: Flask) -> None:
    hops = int(app.config.get("TRUSTED_PROXY_HOPS", 0) or 0)
    if hops > 0:
        # Only the hops we run (the ALB) are believed; a client's own X-Forwarded-For is ignored.
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0
        )

    @app.before_request
    def _limit_json_bodies():
        # Uploads (multipart) and the knowledge base's JSON documents may be large; the rest is small.
        if request.mimetype != "multipart/form-data" and not request.path.startswith(
            "/api/v1/documents"
        ):
            request.max_content_length = min(
                app.config["MAX_JSON_BYTES"], app.config["MAX_CONTENT_LENGTH"]
            )

    @app.after_request
    def _headers(response):
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if "csp_nonce" in g:  # an HTML page that used csp_nonce() for its inline script/style
            headers["Content-Security-Policy"] = PAGE_CSP.format(nonce=g.csp_nonce)
        else:
            headers.setdefault("Content-Security-Policy", API_CSP)
        if app.config.get("HSTS_SECONDS"):
            headers.setdefault(
                "Strict-Transport-Security",
                f"max-age={app.config['HSTS_SECONDS']}; includeSubDomains",
            )
        if request.path.startswith("/api/v1/auth/") and "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"  # token responses must not sit in any cache
        return response
