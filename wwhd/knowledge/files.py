"""Uploaded originals: kept in S3 when a bucket is configured, in a local directory otherwise."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from flask import Flask

from ..offload import cpu_bound


class FileMissing(KeyError):
    """No original stored under that key."""


class FileStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...


def _check_key(key: str) -> str:
    # Keys come from ingest.original_key; refuse anything that could climb out of the root.
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid storage key {key!r}")
    return key


class LocalFileStore:
    """Files under `root`; writes go through a temporary file so a crash never leaves half a file."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, key: str, data: bytes) -> None:
        # In a real thread under gevent (file writes release the GIL): writing 10 MB held the
        # event loop for up to 0.3 s on a busy disk.
        cpu_bound(self._write, self._path(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return cpu_bound(self._path(key).read_bytes)
        except FileNotFoundError:
            raise FileMissing(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3FileStore:
    """Objects in one bucket through boto3 (credentials from the task role or the usual AWS chain)."""

    def __init__(self, bucket: str, client=None):
        if client is None:
            import boto3  # lazy: ~0.16 s of import, only S3 deployments need it (wwhd/lazy.py)

            client = boto3.client("s3")
        self.bucket = bucket
        self.client = client

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=_check_key(key), Body=data, ServerSideEncryption="AES256"
        )

    def get(self, key: str) -> bytes:
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=_check_key(key))
        except self.client.exceptions.NoSuchKey:
            raise FileMissing(key) from None
        return reply["Body"].read()

    def delete(self, key: str) -> None:
        # S3 deletes are idempotent: a missing key is not an error.
        self.client.delete_object(Bucket=self.bucket, Key=_check_key(key))


def make_file_store(config: Mapping) -> FileStore:
    if config.get("UPLOADS_BUCKET_NAME"):
        return S3FileStore(config["UPLOADS_BUCKET_NAME"])
    return LocalFileStore(config["UPLOAD_DIR"])


def get_file_store(app: Flask) -> FileStore:
    """The app's store, built on first use (boto3 clients are thread-safe and reusable)."""
    store = app.extensions.get("wwhd_files")
    if store is None:
        store = app.extensions["wwhd_files"] = make_file_store(app.config)
    return store
