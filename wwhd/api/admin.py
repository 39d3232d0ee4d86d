"""Admin views: usage and cost, documents, unanswered questions, feedback, and user management."""

from __future__ import annotations

from sqlalchemy import func, select

from .. import accounts, usage
from ..errors import Conflict, ValidationError
from ..extensions import db
from ..feedback import feedback_summary, list_unanswered, unanswered_summary
from ..models import Chat, Document, Feedback, Message, TokenUsage, User
from ..models.accounts import ROLES
from . import Blueprint, schemas

bp = Blueprint("admin", __name__, description="Administration")


@bp.get("/admin/stats")
@accounts.require_role("admin")
@bp.response(200, schemas.Stats)
def stats():
    """Users, usage, cost, documents, unanswered questions and feedback"""
    by_role = dict(
        db.session.execute(select(User.role, func.count(User.id)).group_by(User.role)).all()
    )
    active = db.session.scalar(select(func.count(User.id)).where(User.is_active.is_(True)))
    by_status = dict(
        db.session.execute(
            select(Document.status, func.count(Document.id)).group_by(Document.status)
        ).all()
    )
    unpriced = db.session.scalars(
        select(TokenUsage.model).where(TokenUsage.total_tokens > 0).group_by(TokenUsage.model)
    ).all()
    ratings = dict(
        db.session.execute(
            select(Feedback.rating, func.count(Feedback.id)).group_by(Feedback.rating)
        ).all()
    )
    return {
        "users": {
            "total": sum(by_role.values()),
            "active": int(active or 0),
            "by_role": {role: int(by_role.get(role, 0)) for role in ROLES},
        },
        "usage": {
            "today": usage.usage_today(),
            "total": usage.totals(),
            # Cost is 0 for models missing from the price table: name them so nobody trusts that 0.
            "unpriced_models": sorted(
                m
                for m in unpriced
                if m not in usage.PRICES and m.split("/")[-1] not in usage.PRICES
            ),
        },
        "chats": {
            "chats": db.session.scalar(select(func.count(Chat.id))) or 0,
            "answers": db.session.scalar(
                select(func.count(Message.id)).where(Message.role == "assistant")
            )
            or 0,
        },
        "documents": {
            "total": sum(by_status.values()),
            "by_status": {
                status: int(by_status.get(status, 0))
                for status in ("pending", "processing", "indexed", "failed")
            },
            "chunks": int(
                db.session.scalar(select(func.coalesce(func.sum(Document.chunk_count), 0)))
            ),
        },
        "unanswered": unanswered_summary(10),
        "feedback": {"up": int(ratings.get("up", 0)), "down": int(ratings.get("down", 0))},
    }


@bp.get("/admin/unanswered")
@accounts.require_role("admin")
@bp.arguments(schemas.UnansweredQuery, location="query")
@bp.response(200, schemas.UnansweredPage)
def unanswered(query: dict):
    """Questions the knowledge base could not answer, most asked first"""
    return list_unanswered(query["page"], query["per_page"], query.get("namespace") or None)


@bp.get("/admin/feedback")
@accounts.require_role("admin")
@bp.arguments(schemas.FeedbackQuery, location="query")
@bp.response(200, schemas.FeedbackSummary)
def feedback(query: dict):
    """Feedback counts, recent comments and the worst-rated documents"""
    return feedback_summary(recent=query["recent"], worst=query["worst"])


@bp.get("/admin/users")
@accounts.require_role("admin")
@bp.arguments(schemas.UserQuery, location="query")
@bp.response(200, schemas.UserPage)
def users(query: dict):
    """Users, filtered by `q` (e-mail or username) and `role`"""
    page, per_page = query["page"], query["per_page"]
    select_users, count = select(User), select(func.count(User.id))
    search = (query.get("q") or "").strip().lower()
    if search:
        match = func.lower(User.email).contains(search) | func.lower(User.username).contains(search)
        select_users, count = select_users.where(match), count.where(match)
    role = query.get("role")
    if role:
        select_users, count = select_users.where(User.role == role), count.where(User.role == role)
    rows = db.session.scalars(
        select_users.order_by(User.id).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return {
        "items": [u.to_dict() for u in rows],
        "page": page,
        "per_page": per_page,
        "total": db.session.scalar(count) or 0,
    }


@bp.patch("/admin/users/<int:user_id>")
@accounts.require_role("admin")
@bp.arguments(schemas.UserChange)
@bp.response(200, schemas.User)
def update_user(body: dict, user_id: int):
    """Change the role or the active flag (never of your own account)"""
    if not body:
        raise ValidationError("Send 'role' and/or 'is_active'.")
    user = accounts.get_user_or_404(user_id)
    me = accounts.current_user()
    # An admin cannot lock themselves out, so there is always someone who can undo a mistake.
    if user.id == me.id and (
        body.get("role", "admin") != "admin" or body.get("is_active", True) is False
    ):
        raise Conflict(
            "You cannot demote or deactivate your own account.",
            fields=[{"field": "role" if "role" in body else "is_active", "message": "own account"}],
        )
    accounts.update_account(user, role=body.get("role"), is_active=body.get("is_active"))
    db.session.commit()
    return user.to_dict()


@bp.delete("/admin/users/<int:user_id>")
@accounts.require_role("admin")
@bp.response(204)
def delete_user(user_id: int):
    """Deletes the account with its chats, sessions and feedback; its tokens stop working."""
    user = accounts.get_user_or_404(user_id)
    if user.id == accounts.current_user().id:
        raise Conflict("You cannot delete your own account.")
    accounts.delete_account(user)
    db.session.commit()
