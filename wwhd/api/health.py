"""Liveness and dependency health."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import text

from ..deps import get_deps
from ..extensions import db
from . import PUBLIC, Blueprint, schemas

bp = Blueprint("health", __name__, description="Liveness and dependencies")


@bp.get("/health")
@bp.doc(security=PUBLIC)
@bp.response(200, schemas.Health)
def health():
    """Liveness only: no I/O, so a slow dependency never gets healthy tasks killed."""
    return {"status": "ok", "version": current_app.config["VERSION"]}


@bp.get("/health/detailed")
@bp.doc(security=PUBLIC)
@bp.response(200, schemas.Health)
@bp.alt_response(503, schema=schemas.Health, description="Degraded")
def health_detailed():
    """Database, Qdrant and LLM, with the version; 503 when degraded"""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = {"status": "ok"}
    except Exception as exc:  # report, don't raise: this endpoint exists to describe failures
        db.session.rollback()
        checks["database"] = {"status": "down", "error": type(exc).__name__}
    deps = get_deps()
    ok, detail = deps.index.healthy()
    checks["qdrant"] = {
        "status": "ok" if ok else "down",
        "mode": "server" if current_app.config["QDRANT_URL"] else "embedded",
    }
    if not ok:
        checks["qdrant"]["error"] = detail
    llm_ok, llm_detail = deps.chat_model.reachable()
    checks["llm"] = {
        "status": "ok" if llm_ok else "down",
        "provider": current_app.config["PROVIDER"],
        "model": deps.chat_model.name,
        "embeddings": deps.embedder.name if deps.embedder else None,
    }
    if not llm_ok:
        checks["llm"]["error"] = llm_detail
    degraded = any(check["status"] != "ok" for check in checks.values())
    body = {
        "status": "degraded" if degraded else "ok",
        "version": current_app.config["VERSION"],
        "environment": current_app.config["APP_ENV"],
        "checks": checks,
    }
    return body, 503 if degraded else 200
