"""Unbound Flask extensions, bound to an app in create_app() (Flask-Migrate: wwhd.database)."""

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, g, has_request_context
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


class RequestCachedJWTManager(JWTManager):
    """Decodes a request's bearer token once: the rate limiter's key (wwhd/limits.py: caller) and
    the view's verify_jwt_in_request both decode it, and each decode_token parses the token three
    times and checks its HMAC (~0.4 ms of CPU per decode measured under load, bench/profile_turn.py).

    The result is cached on `g` for exactly that token string and only for successful, non-expired,
    CSRF-free decodes (the only kind either caller asks for), so a different or failing token is
    decoded, and refused, as before. `_decode_jwt_from_config` is the one method both
    `flask_jwt_extended.decode_token` and `verify_jwt_in_request` go through (pinned 4.x)."""

    def _decode_jwt_from_config(self, encoded_token, csrf_value=None, allow_expired=False):
        if csrf_value is not None or allow_expired or not has_request_context():
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        cached = g.get("_wwhd_decoded_jwt")
        if cached is not None and cached[0] == encoded_token:
            return dict(cached[1])  # a copy: callers must not share one mutable dict
        claims = super()._decode_jwt_from_config(encoded_token)
        g._wwhd_decoded_jwt = (encoded_token, dict(claims))
        return claims


db = SQLAlchemy(model_class=Base)
jwt = RequestCachedJWTManager()
cors = CORS()


_key_locks: dict[str, threading.Lock] = {}
_key_locks_guard = threading.Lock()


def per_app(app: Flask, key: str, build: Callable[[], Any]) -> Any:
    """`app.extensions[key]`, built on first use, once per app however many threads ask.

    One lock per key: building one collaborator may ask for another (the job runner needs the
    index) without waiting on itself."""
    value = app.extensions.get(key)
    if value is None:
        with _key_locks_guard:
            lock = _key_locks.setdefault(key, threading.Lock())
        with lock:
            value = app.extensions.get(key)
            if value is None:
                value = app.extensions[key] = build()
    return value
