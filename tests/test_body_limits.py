"""413s name the limit the request hit; MAX_UPLOAD_MB above 10 really raises the upload limit."""

from __future__ import annotations

import io

import pytest

from tests.conftest import close_app, make_app
from wwhd.config import load_config

MB = 1024 * 1024


def _upload(client, headers, data: bytes, **form):
    form = {"namespace": "general", **form, "file": (io.BytesIO(data), "big.txt")}
    return client.post(
        "/api/v1/documents/upload", data=form, headers=headers, content_type="multipart/form-data"
    )


def test_max_content_length_follows_max_upload_mb_from_the_environment(monkeypatch):
    monkeypatch.setenv("APP_ENV", "dev")
    monkeypatch.setenv("MAX_UPLOAD_MB", "25")
    assert load_config()["MAX_CONTENT_LENGTH"] == 26 * MB
    monkeypatch.delenv("MAX_UPLOAD_MB")
    assert load_config()["MAX_CONTENT_LENGTH"] == 11 * MB  # 10 MB default + multipart overhead
    assert load_config({"MAX_UPLOAD_MB": 3})["MAX_CONTENT_LENGTH"] == 4 * MB


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/chat", "/api/v1/auth/register"])
def test_json_413_states_the_json_limit(client, auth, path):
    reply = client.post(path, json={"content": "x" * (2 * MB)}, headers=auth.headers("user"))
    assert reply.status_code == 413
    body = reply.get_json()
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "JSON bodies are limited to 1 MB" in body["detail"], body
    assert "11 MB" not in body["detail"]


def test_json_limit_setting_is_the_one_reported(tmp_path):
    app = make_app(tmp_path, MAX_JSON_BYTES=64 * 1024)
    try:
        reply = app.test_client().post("/api/v1/auth/login", json={"email": "x" * 70_000})
        assert reply.status_code == 413
        assert "limited to 65,536 bytes" in reply.get_json()["detail"]
    finally:
        close_app(app)


def test_upload_body_413_states_the_upload_limit(client, auth):
    reply = _upload(client, auth.headers("admin"), b"a" * (12 * MB))
    assert reply.status_code == 413
    assert "10 MB" in reply.get_json()["detail"]


def test_oversized_form_field_is_named_as_such(client, auth):
    reply = _upload(client, auth.headers("admin"), b"small text", title="t" * 600_000)
    assert reply.status_code == 413
    detail = reply.get_json()["detail"]
    assert "form field" in detail and "500,000 bytes" in detail, detail


@pytest.mark.slow  # 12 s: an 11 MB upload parsed and indexed
def test_max_upload_mb_above_ten_accepts_larger_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_MB", "12")
    app = make_app(tmp_path)  # MAX_UPLOAD_MB from the environment, as in a deploy
    try:
        assert app.config["MAX_CONTENT_LENGTH"] == 13 * MB
        from tests.conftest import Auth

        client = app.test_client()
        headers = Auth(app, client).headers("admin")
        # 11 MB (UTF-16 text of one repeated character: few distinct terms, indexed in seconds).
        reply = _upload(client, headers, b"\xff\xfe" + b"\x00\x01" * (11 * MB // 2))
        assert reply.status_code == 202, reply.get_json()
        reply = _upload(client, headers, b"a" * (12 * MB + 1))
        assert reply.status_code == 413 and "12 MB" in reply.get_json()["detail"]
    finally:
        close_app(app)
