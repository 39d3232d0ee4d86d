"""Knowledge-base administration: namespaces, documents, uploads and reindexing (admin only)."""

from __future__ import annotations

import json
import re
from concurrent import futures
from datetime import datetime

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import func, select

from .. import accounts
from ..errors import Conflict, NotFound, PayloadTooLarge, ServiceUnavailable, ValidationError
from ..extensions import db
from ..knowledge.chunking import checksum
from ..knowledge.errors import IndexUnavailable
from ..knowledge.files import get_file_store
from ..knowledge.ingest import (
    FileTooLarge,
    IngestError,
    add_source,
    document_fields,
    find_duplicate,
    index_document,
)
from ..knowledge.jobs import claim, describe_failure, mark_failed
from ..knowledge.namespaces import NAME_PATTERN
from ..knowledge.parsers import ParseError, parse_text
from ..knowledge.reconcile import reindex as reindex_from_sql
from ..links import youtube_id
from ..models import Document, Namespace
from ..models.base import utcnow
from ..models.knowledge import DOCUMENT_STATUSES
from ..validation import link_problem, strip_bidi
from . import int_arg, json_body

bp = Blueprint("documents", __name__)

DELETE_WAIT_SECONDS = 0.5  # then a large document's points are deleted after the answer


def _index():
    from ..deps import get_deps

    return get_deps().index


def _runner():
    from ..deps import get_runner

    return get_runner(current_app._get_current_object())


# -- field validation -------------------------------------------------------------------------------
def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(message, fields=[{"field": field, "message": message}])


def _text(body: dict, name: str, *, required: bool = False, max_len: int = 1000) -> str | None:
    """A trimmed string without bidi controls (wwhd/validation.py); empty or missing means absent."""
    value = body.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _invalid(name, f"Field '{name}' must be a string.")
    value = strip_bidi(value).strip()
    if not value:
        if required:
            raise _invalid(name, f"Field '{name}' is required.")
        return None
    if len(value) > max_len:
        raise _invalid(name, f"Field '{name}' is longer than {max_len} characters.")
    return value


def _namespace(body: dict) -> str:
    name = _text(body, "namespace", required=True, max_len=64)
    if db.session.get(Namespace, name) is None:
        known = ", ".join(db.session.scalars(select(Namespace.name).order_by(Namespace.name)))
        raise _invalid("namespace", f"Unknown namespace '{name}'. Use one of: {known}.")
    return name


def _link(body: dict, name: str) -> str | None:
    url = _text(body, name)  # 1000 characters: the columns' size
    problem = url and link_problem(url)
    if problem:
        raise _invalid(name, f"Field '{name}' {problem}.")
    return url


def _youtube_url(body: dict) -> str | None:
    url = _link(body, "youtube_url")
    if url and not youtube_id(url):
        raise _invalid(
            "youtube_url",
            "Field 'youtube_url' is not a YouTube video link "
            "(expected youtube.com/watch?v=…, youtu.be/… or /shorts/…).",
        )
    return url


def _source_url(body: dict) -> str | None:
    return _link(body, "source_url")


def _published_at(body: dict) -> str | None:
    value = _text(body, "published_at", max_len=32)
    if value:
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _invalid(
                "published_at", "Field 'published_at' must be a date like 2024-05-31."
            ) from None
    return value


def _tags(raw) -> list[str]:
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.lstrip().startswith("[") else raw.split(",")
        except ValueError:
            raise _invalid(
                "tags", "Field 'tags' must be a JSON list or comma-separated words."
            ) from None
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise _invalid("tags", "Field 'tags' must be a list of strings.")
    tags = [strip_bidi(t).strip()[:64] for t in raw if strip_bidi(t).strip()]
    if len(tags) > 50:
        raise _invalid("tags", "At most 50 tags.")
    return tags


def _parse_error(err: ParseError, filename: str | None = None) -> ValidationError:
    what = f"'{filename}'" if filename else "the content"
    return ValidationError(
        f"Could not read {what}: {err.message}.",
        fields=[
            {"field": "file" if filename else "content", "message": err.message, "code": err.code}
        ],
    )


def _duplicate(existing: Document) -> Conflict:
    return Conflict(
        f"This content is already in the knowledge base as document {existing.id} "
        f"('{existing.title}', {existing.status}).",
        extra={"duplicate_of": existing.to_dict(with_content=False)},
    )


def _get_document(document_id: int) -> Document:
    # Beyond 64 bits the database driver raises instead of finding nothing.
    doc = db.session.get(Document, document_id) if 0 < document_id < 2**63 else None
    if doc is None:
        raise NotFound(f"Document {document_id} not found.")
    return doc


def _busy(doc: Document) -> Conflict:
    return Conflict(f"Document {doc.id} is being indexed right now; try again when it is done.")


def _is_running(doc: Document) -> bool:
    if doc.status != "processing" or doc.heartbeat_at is None:
        return False
    return (utcnow() - doc.heartbeat_at).total_seconds() < current_app.config["JOB_STALE_SECONDS"]


def _created(result) -> tuple:
    """202 with the pending document; a duplicate is a 409 naming the existing one, except that a
    failed duplicate is simply queued again."""
    doc = result.document
    if not result.created:
        if doc.status != "failed":
            db.session.rollback()
            raise _duplicate(doc)
        doc.status, doc.error = "pending", None
    try:
        db.session.commit()
    except Exception:
        # Two identical uploads at once: the unique checksum lets one win.
        db.session.rollback()
        existing = find_duplicate(doc.checksum) if doc.checksum else None
        if existing is not None:
            raise _duplicate(existing) from None
        raise
    _runner().submit(doc.id)
    body = doc.to_dict()
    if not result.created:
        body["duplicate_of"] = doc.id
    return jsonify(body), 202


# -- namespaces -------------------------------------------------------------------------------------
@bp.get("/documents/namespaces")
@accounts.require_role("admin")
def namespaces():
    counts = dict(
        db.session.execute(
            select(Document.namespace, func.count(Document.id)).group_by(Document.namespace)
        ).all()
    )
    rows = db.session.scalars(select(Namespace).order_by(Namespace.name))
    return jsonify(
        [
            {
                "name": n.name,
                "description": n.description or "",
                "keywords": n.keywords or [],
                "document_count": counts.get(n.name, 0),
            }
            for n in rows
        ]
    )


@bp.post("/namespaces")
@accounts.require_role("admin")
def add_namespace():
    body = json_body()
    name = _text(body, "name", required=True, max_len=64)
    if not re.match(NAME_PATTERN, name):
        raise _invalid(
            "name",
            "Namespace names are 2-64 lower-case letters, digits or '_', starting with a letter.",
        )
    description = _text(body, "description", max_len=500) or ""
    keywords = body.get("keywords") or []
    if isinstance(keywords, str):
        keywords = keywords.split(",")
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise _invalid("keywords", "Field 'keywords' must be a list of words.")
    if db.session.get(Namespace, name) is not None:
        raise Conflict(
            f"Namespace '{name}' already exists.", fields=[{"field": "name", "message": "exists"}]
        )
    namespace = Namespace(
        name=name,
        description=description,
        keywords=sorted({k.strip().lower() for k in keywords if k.strip()}),
    )
    db.session.add(namespace)
    db.session.commit()
    return jsonify(
        {
            "name": name,
            "description": description,
            "keywords": namespace.keywords,
            "document_count": 0,
        }
    ), 201


@bp.post("/namespaces/<name>/reindex")
@accounts.require_role("admin")
def reindex_namespace(name: str):
    if db.session.get(Namespace, name) is None:
        raise NotFound(f"Namespace '{name}' not found.")
    try:
        counts = reindex_from_sql(_index(), name)
    except IndexUnavailable:
        raise ServiceUnavailable(
            "The search index is unavailable; nothing was changed. Try again shortly."
        ) from None
    for document_id in counts["requeued"]:
        _runner().submit(document_id)
    return jsonify(counts)


# -- documents --------------------------------------------------------------------------------------


@bp.get("/documents/")
@bp.get("/documents")
@accounts.require_role("admin")
def list_documents():
    query = select(Document)
    namespace = request.args.get("namespace", "").strip()
    if namespace:
        query = query.where(Document.namespace == namespace)
    status = request.args.get("status", "").strip()
    if status:
        if status not in DOCUMENT_STATUSES:
            raise _invalid(
                "status", f"Query parameter 'status' must be one of {', '.join(DOCUMENT_STATUSES)}."
            )
        query = query.where(Document.status == status)
    skip = int_arg("skip", 0, 0, 10**9)
    limit = int_arg("limit", 100, 1, 500)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    docs = db.session.scalars(
        query.order_by(Document.created_at.desc(), Document.id.desc()).offset(skip).limit(limit)
    )
    response = jsonify([doc.to_dict() for doc in docs])
    response.headers["X-Total-Count"] = str(total)
    return response


@bp.post("/documents/upload")
@accounts.require_role("admin")
def upload():
    max_bytes = current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024
    too_large = f"File too large: the limit is {current_app.config['MAX_UPLOAD_MB']} MB per file."
    if request.content_length and request.content_length > current_app.config["MAX_CONTENT_LENGTH"]:
        raise PayloadTooLarge(too_large)
    file = request.files.get("file")
    if file is None or not file.filename:
        raise _invalid("file", "Attach the file as multipart form field 'file'.")
    data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLarge(too_large)
    form = request.form.to_dict()
    namespace = _namespace(form)
    try:
        result = add_source(
            namespace,
            data=data,
            filename=file.filename,
            title=_text(form, "title", max_len=300),
            source_url=_source_url(form),
            youtube_url=_youtube_url(form),
            tags=_tags(form.get("tags")),
            published_at=_published_at(form),
            created_by=accounts.current_user().id,
            store=get_file_store(current_app),
            max_bytes=max_bytes,
        )
    except ParseError as err:
        raise _parse_error(err, file.filename) from None
    except FileTooLarge:
        raise PayloadTooLarge(too_large) from None
    except IngestError as err:
        raise ValidationError(str(err)) from None
    return _created(result)


@bp.post("/documents/")
@bp.post("/documents")
@accounts.require_role("admin")
def create_document():
    body = json_body()
    namespace = _namespace(body)
    title = _text(body, "title", required=True, max_len=300)
    content = body.get("content")
    if not isinstance(content, str) or not content.strip():
        raise _invalid("content", "Field 'content' is required (the document text).")
    try:
        result = add_source(
            namespace,
            text=content,
            title=title,
            source_url=_source_url(body),
            youtube_url=_youtube_url(body),
            tags=_tags(body.get("tags")),
            published_at=_published_at(body),
            created_by=accounts.current_user().id,
        )
    except ParseError as err:
        raise _parse_error(err) from None
    except IngestError as err:
        raise ValidationError(str(err)) from None
    return _created(result)


@bp.get("/documents/<int:document_id>")
@accounts.require_role("admin")
def show(document_id: int):
    return jsonify(_get_document(document_id).to_dict())


@bp.put("/documents/<int:document_id>")
@bp.patch("/documents/<int:document_id>")
@accounts.require_role("admin")
def update(document_id: int):
    """PUT replaces namespace, title, content and the URLs (missing or empty URLs are cleared);
    PATCH changes only the fields sent. New content is re-chunked and its vectors replaced before
    the reply; a metadata change rewrites the payload of the existing vectors."""
    doc = _get_document(document_id)
    body = json_body()
    full = request.method == "PUT"
    changes: dict = {}
    if full or "namespace" in body:
        changes["namespace"] = _namespace(body)
    if full or "title" in body:
        changes["title"] = _text(body, "title", required=True, max_len=300)
    if full or "source_url" in body:
        changes["source_url"] = _source_url(body)
    if full or "youtube_url" in body:
        changes["youtube_url"] = _youtube_url(body)
    if "tags" in body:
        changes["tags"] = _tags(body.get("tags"))
    if "published_at" in body:
        changes["published_at"] = _published_at(body)
    parsed = None
    if full or "content" in body:
        content = body.get("content")
        if not isinstance(content, str) or not content.strip():
            raise _invalid("content", "Field 'content' is required (the document text).")
        if content != doc.content:
            try:
                parsed = parse_text(content)
            except ParseError as err:
                raise _parse_error(err) from None
            digest = checksum(parsed.text)
            other = find_duplicate(digest)
            if other is not None and other.id != doc.id:
                raise _duplicate(other)
            changes.update(content=parsed.text, checksum=digest, kind=parsed.kind)
    changes = {k: v for k, v in changes.items() if getattr(doc, k) != v}
    if "content" not in changes:
        parsed = None  # same text, differently typed: nothing to re-chunk
    if not changes:
        return jsonify(doc.to_dict())
    if _is_running(doc):
        raise _busy(doc)

    if parsed is not None:
        return _replace_content(doc, changes, parsed)
    if doc.status == "indexed":
        for key, value in changes.items():
            setattr(doc, key, value)
        try:
            _index().set_document_payload(doc.id, document_fields(doc))
        except IndexUnavailable:
            db.session.rollback()
            raise ServiceUnavailable(
                "The search index is unavailable; nothing was changed. Try again shortly."
            ) from None
    else:
        for key, value in changes.items():
            setattr(doc, key, value)
    doc.updated_at = utcnow()
    db.session.commit()
    return jsonify(doc.to_dict())


def _replace_content(doc: Document, changes: dict, parsed):
    document_id = doc.id
    if not claim(
        document_id, current_app.config["JOB_STALE_SECONDS"], ("pending", "indexed", "failed")
    ):
        raise _busy(doc)
    doc = _get_document(document_id)
    for key, value in changes.items():
        setattr(doc, key, value)
    doc.updated_at = utcnow()
    db.session.commit()  # the edit is kept even if indexing fails below
    try:
        index_document(doc, _index(), parsed)
    except Exception as exc:
        message = describe_failure(exc)
        mark_failed(current_app._get_current_object(), document_id, message, _index())
        raise ServiceUnavailable(
            f"The edit was saved but could not be indexed: {message}",
            extra={"document": _get_document(document_id).to_dict()},
        ) from None
    return jsonify(doc.to_dict())


@bp.delete("/documents/<int:document_id>")
@accounts.require_role("admin")
def delete(document_id: int):
    """Rows first (the record), then the points and the original in a job: a 20k-chunk document
    would otherwise hold the request for minutes in embedded Qdrant. Small documents (and a
    Qdrant server) are usually done within the short wait; points left by a crash are removed by
    the index's self-healing check, since no document has their checksum any more."""
    doc = _get_document(document_id)
    key = doc.original_key
    db.session.delete(doc)
    db.session.commit()
    done = _runner().delete_document(document_id, key)
    futures.wait([done], timeout=DELETE_WAIT_SECONDS)
    return jsonify({"id": document_id, "deleted": True})


@bp.post("/documents/<int:document_id>/reindex")
@accounts.require_role("admin")
def reindex_document(document_id: int):
    """Queue the document to be re-chunked and re-indexed (202)."""
    doc = _get_document(document_id)
    if _is_running(doc):
        raise _busy(doc)
    doc.status, doc.error = "pending", None
    doc.attempts = 0
    db.session.commit()
    _runner().submit(doc.id)
    return jsonify(doc.to_dict()), 202
