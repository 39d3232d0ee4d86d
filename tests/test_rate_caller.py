"""The limiter's bucket for a bearer token (limits.caller): remembered per app until the token's
`exp`, never for a token that fails."""

from __future__ import annotations

import time

import jwt as pyjwt
import pytest

from tests.conftest import Auth, close_app, make_app
from wwhd import limits

SECRET = "test-secret-that-is-long-enough-0123456789"


@pytest.fixture
def decodes(monkeypatch):
    """How many times the limiter verified a token."""
    calls = []
    real = limits.decode_token

    def counting(token, *args, **kwargs):
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(limits, "decode_token", counting)
    return calls


def caller_of(app, token: str) -> tuple[str, str]:
    with app.test_request_context(headers={"Authorization": f"Bearer {token}"}):
        return limits.caller()


def test_a_valid_token_is_verified_once_per_app(app, client, decodes):
    token = Auth(app, client).login(Auth(app, client).create("user"))["access_token"]
    decodes.clear()
    first, second = caller_of(app, token), caller_of(app, token)
    assert first == second and first[0] == "user" and first[1].startswith("user:")
    assert decodes == [token]


def test_a_bad_token_is_never_remembered(app, decodes):
    forged = pyjwt.encode(
        {"sub": "1", "role": "admin", "exp": int(time.time()) + 600}, "another-secret-" * 3
    )
    assert caller_of(app, forged)[0] == "anonymous"
    assert caller_of(app, forged)[0] == "anonymous"
    assert decodes == [forged, forged]


def test_a_remembered_token_is_checked_again_once_it_expires(app, client, decodes):
    token = Auth(app, client).login(Auth(app, client).create("user"))["access_token"]
    assert caller_of(app, token)[0] == "user"
    known = app.extensions["wwhd_rate_tokens"]
    exp, role, key = known[token]
    known[token] = (time.time() - 1, role, key)  # as if its exp had passed
    decodes.clear()
    assert caller_of(app, token)[0] == "user"  # still valid for the library: verified again
    assert decodes == [token]


def test_what_one_app_verified_does_not_count_in_another(tmp_path, app, client, decodes):
    token = Auth(app, client).login(Auth(app, client).create("user"))["access_token"]
    assert caller_of(app, token)[0] == "user"
    other = make_app(tmp_path / "other", JWT_SECRET="a-different-secret-that-is-long-enough-42")
    try:
        assert caller_of(other, token)[0] == "anonymous"
    finally:
        close_app(other)


def test_the_memory_stays_bounded(app, client, monkeypatch):
    monkeypatch.setattr(limits, "MAX_KNOWN_TOKENS", 3)
    auth = Auth(app, client)
    user = auth.create("user")
    tokens = [auth.login(user)["access_token"] for _ in range(5)]
    for token in tokens:
        assert caller_of(app, token)[0] == "user"
    assert len(app.extensions["wwhd_rate_tokens"]) <= 3
