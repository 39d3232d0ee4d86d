"""Knowledge-base administration: namespaces, documents, uploads and reindexing (admin only)."""

from __future__ import annotations

from functools import wraps

from flask import current_app, request
from sqlalchemy import func, select

from .. import accounts, documents
from ..deps import get_deps
from ..errors import Conflict, NotFound, PayloadTooLarge
from ..extensions import db
from ..knowledge.files import get_file_store
from ..models import Document, Namespace
from . import Blueprint, schemas

bp = Blueprint("documents", __name__, description="Knowledge base (admin)")


def _index():
    return get_deps().index


def _created(added: documents.Added) -> tuple:
    """202 with the pending document (a failed duplicate queued again names itself)."""
    db.session.commit()
    doc = added.document
    documents.enqueue(doc.id)
    body = doc.to_dict()
    if added.requeued:
        body["duplicate_of"] = doc.id
    return body


# -- namespaces -------------------------------------------------------------------------------------
@bp.get("/documents/namespaces")
@accounts.require_role("admin")
@bp.response(200, schemas.Namespace(many=True))
def namespaces():
    """Namespaces with their document counts"""
    counts = dict(
        db.session.execute(
            select(Document.namespace, func.count(Document.id)).group_by(Document.namespace)
        ).all()
    )
    rows = db.session.scalars(select(Namespace).order_by(Namespace.name))
    return [
        {
            "name": n.name,
            "description": n.description or "",
            "keywords": n.keywords or [],
            "document_count": counts.get(n.name, 0),
        }
        for n in rows
    ]


@bp.post("/namespaces")
@accounts.require_role("admin")
@bp.arguments(schemas.NamespaceInput)
@bp.response(201, schemas.Namespace)
def add_namespace(body: dict):
    """Add a namespace"""
    name = body["name"]
    if db.session.get(Namespace, name) is not None:
        raise Conflict(
            f"Namespace '{name}' already exists.", fields=[{"field": "name", "message": "exists"}]
        )
    namespace = Namespace(
        name=name,
        description=body.get("description") or "",
        keywords=sorted({k.lower() for k in body.get("keywords", [])}),
    )
    db.session.add(namespace)
    db.session.commit()
    return {
        "name": name,
        "description": namespace.description,
        "keywords": namespace.keywords,
        "document_count": 0,
    }


@bp.post("/namespaces/<name>/reindex")
@accounts.require_role("admin")
@bp.response(200, schemas.ReindexCounts)
def reindex_namespace(name: str):
    """Rebuild a namespace's points from the SQL record"""
    if db.session.get(Namespace, name) is None:
        raise NotFound(f"Namespace '{name}' not found.")
    counts = documents.reindex_namespace(name, _index())
    for document_id in counts["requeued"]:
        documents.enqueue(document_id)
    return counts


# -- documents --------------------------------------------------------------------------------------
@bp.get("/documents/")
@bp.get("/documents")
@accounts.require_role("admin")
@bp.arguments(schemas.DocumentQuery, location="query")
@bp.response(
    200,
    schemas.Document(many=True),
    headers={
        "X-Total-Count": {"schema": {"type": "string"}, "description": "matches before paging"}
    },
)
def list_documents(query_args: dict):
    """Documents, newest first, filtered by namespace and status (X-Total-Count: all matches)"""
    query = select(Document)
    if query_args.get("namespace"):
        query = query.where(Document.namespace == query_args["namespace"])
    if query_args.get("status"):
        query = query.where(Document.status == query_args["status"])
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    docs = db.session.scalars(
        query.order_by(Document.created_at.desc(), Document.id.desc())
        .offset(query_args["skip"])
        .limit(query_args["limit"])
    )
    return [doc.to_dict() for doc in docs], {"X-Total-Count": str(total)}


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"File too large: the limit is {current_app.config['MAX_UPLOAD_MB']} MB per file."
    )


def _upload_size_guard(view):
    """Refuse a body over the request limit before the form is parsed, with the per-file message."""

    @wraps(view)
    def guarded(*args, **kwargs):
        if (request.content_length or 0) > current_app.config["MAX_CONTENT_LENGTH"]:
            raise _too_large()
        return view(*args, **kwargs)

    return guarded


@bp.post("/documents/upload")
@accounts.require_role("admin")
@_upload_size_guard
@bp.arguments(schemas.Upload, location="files")
@bp.response(202, schemas.Document)
def upload(form: dict):
    """Upload a transcript, article or PDF (multipart; 10 MB per file); indexing runs as a job"""
    max_bytes = current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024
    file = form["file"]
    if not getattr(file, "filename", None):
        raise documents.invalid("file", "Attach the file as multipart form field 'file'.")
    data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_large()
    added = documents.add(
        form["namespace"],
        data=data,
        filename=file.filename,
        title=form.get("title"),
        source_url=form.get("source_url"),
        youtube_url=form.get("youtube_url"),
        tags=form.get("tags"),
        published_at=form.get("published_at"),
        created_by=accounts.current_user().id,
        store=get_file_store(current_app),
        max_bytes=max_bytes,
    )
    return _created(added)


@bp.post("/documents/")
@bp.post("/documents")
@accounts.require_role("admin")
@bp.arguments(schemas.DocumentInput)
@bp.response(202, schemas.Document)
def create_document(body: dict):
    """Add a document from JSON text (empty strings mean absent); indexing runs as a job"""
    added = documents.add(
        body["namespace"],
        text=body["content"],
        title=body["title"],
        source_url=body.get("source_url"),
        youtube_url=body.get("youtube_url"),
        tags=body.get("tags"),
        published_at=body.get("published_at"),
        created_by=accounts.current_user().id,
    )
    return _created(added)


@bp.get("/documents/<int:document_id>")
@accounts.require_role("admin")
@bp.response(200, schemas.Document)
def show(document_id: int):
    """One document with its content"""
    return documents.get(document_id).to_dict()


@bp.put("/documents/<int:document_id>")
@bp.patch("/documents/<int:document_id>")
@accounts.require_role("admin")
@bp.arguments(schemas.DocumentChange)
@bp.response(200, schemas.Document)
def update(body: dict, document_id: int):
    """Change the fields sent (PUT and PATCH alike: a missing field keeps its value; an empty or
    null URL clears it). New content is re-chunked and its vectors replaced before the reply; a
    metadata change rewrites the payload of the existing vectors"""
    doc = documents.update(documents.get(document_id), body, _index())
    db.session.commit()
    return doc.to_dict()


@bp.delete("/documents/<int:document_id>")
@accounts.require_role("admin")
@bp.response(200, schemas.Deleted)
def delete(document_id: int):
    """Delete the rows now; the points and the original go in a job (answers in < 2 s)"""
    document_id, key = documents.delete(documents.get(document_id))
    db.session.commit()
    documents.forget(document_id, key)
    return {"id": document_id, "deleted": True}


@bp.post("/documents/<int:document_id>/reindex")
@accounts.require_role("admin")
@bp.response(202, schemas.Document)
def reindex_document(document_id: int):
    """Queue the document to be re-chunked and re-indexed"""
    doc = documents.mark_for_reindex(documents.get(document_id))
    db.session.commit()
    documents.enqueue(doc.id)
    return doc.to_dict()
