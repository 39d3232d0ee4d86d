"""Knowledge-base administration: namespaces, documents, uploads and reindexing (admin only)."""

from __future__ import annotations

import json
import re
from datetime import datetime

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import func, select

from .. import accounts, documents
from ..errors import Conflict, NotFound, PayloadTooLarge, ValidationError
from ..extensions import db
from ..knowledge.files import get_file_store
from ..knowledge.jobs import get_runner
from ..knowledge.namespaces import NAME_PATTERN
from ..links import youtube_id
from ..models import Document, Namespace
from ..models.knowledge import DOCUMENT_STATUSES
from . import int_arg, json_body

bp = Blueprint("documents", __name__)


@bp.before_app_request
def _start_jobs() -> None:
    # First API request starts the runner, whose first task resumes jobs a dead process left behind.
    if request.path.startswith("/api/"):
        get_runner(current_app._get_current_object())


def _index():
    from ..deps import get_deps

    return get_deps().index


def _runner():
    return get_runner(current_app._get_current_object())


# -- field validation -------------------------------------------------------------------------------
def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(message, fields=[{"field": field, "message": message}])


def _text(body: dict, name: str, *, required: bool = False, max_len: int = 1000) -> str | None:
    """A trimmed string; empty or missing means absent (None)."""
    value = body.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _invalid(name, f"Field '{name}' must be a string.")
    value = value.strip()
    if not value:
        if required:
            raise _invalid(name, f"Field '{name}' is required.")
        return None
    if len(value) > max_len:
        raise _invalid(name, f"Field '{name}' is longer than {max_len} characters.")
    return value


def _namespace(body: dict) -> str:
    return documents.require_namespace(_text(body, "namespace", required=True, max_len=64))


def _youtube_url(body: dict) -> str | None:
    url = _text(body, "youtube_url")
    if url and not youtube_id(url):
        raise _invalid(
            "youtube_url",
            "Field 'youtube_url' is not a YouTube video link "
            "(expected youtube.com/watch?v=…, youtu.be/… or /shorts/…).",
        )
    return url


def _source_url(body: dict) -> str | None:
    url = _text(body, "source_url")
    if url and not re.match(r"^https?://\S+$", url):
        raise _invalid("source_url", "Field 'source_url' must be an http(s) URL.")
    return url


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
    tags = [t.strip()[:64] for t in raw if t.strip()]
    if len(tags) > 50:
        raise _invalid("tags", "At most 50 tags.")
    return tags


def _created(added: documents.Added) -> tuple:
    """202 with the pending document (a failed duplicate queued again names itself)."""
    db.session.commit()
    doc = added.document
    documents.enqueue(doc.id)
    body = doc.to_dict()
    if added.requeued:
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
    counts = documents.reindex_namespace(name, _index())
    for document_id in counts["requeued"]:
        documents.enqueue(document_id)
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
    added = documents.add(
        _namespace(form),
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
    return _created(added)


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
    added = documents.add(
        namespace,
        text=content,
        title=title,
        source_url=_source_url(body),
        youtube_url=_youtube_url(body),
        tags=_tags(body.get("tags")),
        published_at=_published_at(body),
        created_by=accounts.current_user().id,
    )
    return _created(added)


@bp.get("/documents/<int:document_id>")
@accounts.require_role("admin")
def show(document_id: int):
    return jsonify(documents.get(document_id).to_dict())


@bp.put("/documents/<int:document_id>")
@bp.patch("/documents/<int:document_id>")
@accounts.require_role("admin")
def update(document_id: int):
    """PUT and PATCH change only the fields sent (a missing field keeps its value; an empty or
    null URL clears it): the original frontend's Edit PUTs without `namespace`. New content is
    re-chunked and its vectors replaced before the reply; a metadata change rewrites the payload
    of the existing vectors."""
    doc = documents.get(document_id)
    body = json_body()
    changes: dict = {}
    if "namespace" in body:
        changes["namespace"] = _namespace(body)
    if "title" in body:
        changes["title"] = _text(body, "title", required=True, max_len=300)
    if "source_url" in body:
        changes["source_url"] = _source_url(body)
    if "youtube_url" in body:
        changes["youtube_url"] = _youtube_url(body)
    if "tags" in body:
        changes["tags"] = _tags(body.get("tags"))
    if "published_at" in body:
        changes["published_at"] = _published_at(body)
    if "content" in body:
        content = body.get("content")
        if not isinstance(content, str) or not content.strip():
            raise _invalid("content", "Field 'content' is required (the document text).")
        changes["content"] = content
    doc = documents.update(doc, changes, _index())
    db.session.commit()
    return jsonify(doc.to_dict())


@bp.delete("/documents/<int:document_id>")
@accounts.require_role("admin")
def delete(document_id: int):
    doc = documents.get(document_id)
    key, store = doc.original_key, get_file_store(current_app)
    documents.delete(doc, _index(), store)
    db.session.commit()
    documents.forget_original(key, store, document_id)
    return jsonify({"id": document_id, "deleted": True})


@bp.post("/documents/<int:document_id>/reindex")
@accounts.require_role("admin")
def reindex_document(document_id: int):
    """Queue the document to be re-chunked and re-indexed (202)."""
    doc = documents.mark_for_reindex(documents.get(document_id))
    db.session.commit()
    documents.enqueue(doc.id)
    return jsonify(doc.to_dict()), 202
