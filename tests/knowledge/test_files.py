"""Originals storage: local directory and S3 (moto), and uploads keeping their original."""

from __future__ import annotations

import io

import boto3
import pytest
from moto import mock_aws

from tests.conftest import close_app
from wwhd.extensions import db
from wwhd.knowledge.files import (
    FileMissing,
    LocalFileStore,
    S3FileStore,
    get_file_store,
    make_file_store,
)
from wwhd.models import Document


def roundtrip(store) -> None:
    store.put("originals/ab/abc/talk.vtt", b"WEBVTT\n")
    assert store.get("originals/ab/abc/talk.vtt") == b"WEBVTT\n"
    store.put("originals/ab/abc/talk.vtt", b"WEBVTT\n\nv2")
    assert store.get("originals/ab/abc/talk.vtt") == b"WEBVTT\n\nv2"
    store.delete("originals/ab/abc/talk.vtt")
    store.delete("originals/ab/abc/talk.vtt")  # already gone is fine
    with pytest.raises(FileMissing):
        store.get("originals/ab/abc/talk.vtt")
    for bad in ("../etc/passwd", "/abs", "a//b", ""):
        with pytest.raises(ValueError):
            store.put(bad, b"x")


def test_local_store(tmp_path):
    store = LocalFileStore(tmp_path / "uploads")
    roundtrip(store)
    store.put("originals/x/y.txt", b"kept")
    assert (tmp_path / "uploads" / "originals" / "x" / "y.txt").read_bytes() == b"kept"
    assert not [
        p
        for p in (tmp_path / "uploads" / "originals" / "x").iterdir()
        if p.name.startswith(".upload-")
    ]


@pytest.fixture
def s3_bucket(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="wwhd-uploads")
        yield "wwhd-uploads"


def test_s3_store(s3_bucket):
    store = make_file_store({"UPLOADS_BUCKET_NAME": s3_bucket, "UPLOAD_DIR": "unused"})
    assert isinstance(store, S3FileStore)
    roundtrip(store)
    store.put("originals/k/doc.pdf", b"%PDF-1.4")
    head = boto3.client("s3").head_object(Bucket=s3_bucket, Key="originals/k/doc.pdf")
    assert head["ServerSideEncryption"] == "AES256"


def test_upload_keeps_original_in_s3_and_delete_removes_it(tmp_path, s3_bucket, auth_factory):
    app, client, headers = auth_factory(UPLOADS_BUCKET_NAME=s3_bucket)
    data = b"[00:00:05] Stand tall.\n[00:00:09] Breathe low into the belly.\n"
    reply = client.post(
        "/api/v1/documents/upload",
        headers=headers,
        content_type="multipart/form-data",
        data={"namespace": "exercise_martial_arts", "file": (io.BytesIO(data), "stance notes.txt")},
    )
    assert reply.status_code == 202, reply.get_json()
    doc_id = reply.get_json()["id"]
    from wwhd.deps import get_runner

    assert get_runner(app).wait(doc_id) == "indexed"
    with app.app_context():
        key = db.session.get(Document, doc_id).original_key
    assert key.startswith("originals/") and key.endswith("/stance_notes.txt")
    s3 = boto3.client("s3")
    assert s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == data
    assert client.delete(f"/api/v1/documents/{doc_id}", headers=headers).status_code == 200
    assert get_runner(app).wait(doc_id) == "deleted"  # the original goes in the deletion job
    assert s3.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0


def test_local_store_is_the_default(app, tmp_path):
    store = get_file_store(app)
    assert isinstance(store, LocalFileStore) and store.root == tmp_path / "uploads"


@pytest.fixture
def auth_factory(tmp_path):
    """An app with config overrides plus an admin's headers."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "wwhd_conftest", Path(__file__).parents[1] / "conftest.py"
    )
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    made = []

    def build(**overrides):
        app = conftest.make_app(tmp_path, **overrides)
        client = app.test_client()
        made.append(app)
        return app, client, conftest.Auth(app, client).headers("admin")

    yield build
    for app in made:
        close_app(app)
