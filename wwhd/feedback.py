"""The creator's feedback loop: ratings on answers and citations, unanswered questions, summaries."""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from .conversations import normalize_text
from .database import MAX_ID
from .errors import NotFound, ValidationError
from .extensions import db
from .models import Chat, Citation, Document, Feedback, Message, UnansweredQuestion, User
from .models.base import isoformat, utcnow

RATINGS = ("up", "down")
MAX_COMMENT = 2000


def feedback_dict(row: Feedback) -> dict:
    return {
        "id": row.id,
        "message_id": row.message_id,
        "citation_id": row.citation_id,
        "rating": row.rating,
        "comment": row.comment,
        "created_at": isoformat(row.created_at),
    }


def parse_feedback(body: dict) -> tuple[str, str | None, int | None]:
    """Validate {rating, comment?, citation_id?} → (rating, comment, citation_id). Raises ValidationError."""
    unknown = set(body) - {"rating", "comment", "citation_id"}
    if unknown:
        raise ValidationError(
            f"Unknown field(s): {', '.join(sorted(unknown))}.",
            fields=[{"field": name, "message": "unknown"} for name in sorted(unknown)],
        )
    rating = body.get("rating")
    if rating not in RATINGS:
        raise ValidationError(
            "Field 'rating' must be \"up\" or \"down\".",
            fields=[{"field": "rating", "message": "up or down"}],
        )
    comment = body.get("comment")
    if comment is not None:
        if not isinstance(comment, str):
            raise ValidationError(
                "Field 'comment' must be a string.",
                fields=[{"field": "comment", "message": "not a string"}],
            )
        comment = normalize_text(comment) or None
        if comment and len(comment) > MAX_COMMENT:
            raise ValidationError(
                f"Field 'comment' is too long (the limit is {MAX_COMMENT} characters).",
                fields=[{"field": "comment", "message": f"max {MAX_COMMENT} characters"}],
            )
    citation_id = body.get("citation_id")
    if citation_id is not None and (
        isinstance(citation_id, bool) or not isinstance(citation_id, int)
    ):
        raise ValidationError(
            "Field 'citation_id' must be a citation id (an integer).",
            fields=[{"field": "citation_id", "message": "not an integer"}],
        )
    return rating, comment, citation_id


def get_owned_message(user: User, message_id: str) -> Message:
    """The message if it is in one of `user`'s chats; anyone else's is indistinguishable from missing (404)."""
    message = (
        db.session.get(Message, message_id)
        if isinstance(message_id, str) and len(message_id) <= 64
        else None
    )
    if message is None:
        raise NotFound("Message not found.")
    chat = db.session.get(Chat, message.chat_id)
    if chat is None or chat.user_id != user.id:
        raise NotFound("Message not found.")
    return message


def record_feedback(user: User, message_id: str, body: dict) -> tuple[Feedback, bool]:
    """Add or replace `user`'s rating of an answer (or of one of its citations); returns (row, created).

    One rating per user, message and citation (unique indexes): rating again overwrites the
    earlier one, comment included, and moves its time to now. When a concurrent request inserts
    the same rating first, the session is rolled back and that row is updated instead.
    Flushes; the caller commits. Raises NotFound or ValidationError.
    """
    rating, comment, citation_id = parse_feedback(body)
    message = get_owned_message(user, message_id)
    if message.role != "assistant":
        raise ValidationError(
            "Feedback can only be given on an answer, not on your own message.",
            fields=[{"field": "message_id", "message": "not an answer"}],
        )
    if citation_id is not None:
        cited = db.session.get(Citation, citation_id) if 0 < citation_id <= MAX_ID else None
        if cited is None or cited.message_id != message.id:
            raise ValidationError(
                "Field 'citation_id' is not a citation of this answer.",
                fields=[{"field": "citation_id", "message": "not a citation of this message"}],
            )
    user_id, message_id = user.id, message.id
    row = _find_feedback(user_id, message_id, citation_id)
    created = row is None
    if created:
        row = Feedback(user_id=user_id, message_id=message_id, citation_id=citation_id)
        db.session.add(row)
    row.rating, row.comment, row.created_at = rating, comment, utcnow()
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        row = _find_feedback(user_id, message_id, citation_id)
        if row is None:  # not our unique key (the answer was deleted meanwhile): the 409 handler
            raise
        created = False
        row.rating, row.comment, row.created_at = rating, comment, utcnow()
        db.session.flush()
    return row, created


def _find_feedback(user_id: int, message_id: str, citation_id: int | None) -> Feedback | None:
    return db.session.scalar(
        select(Feedback).where(
            Feedback.user_id == user_id,
            Feedback.message_id == message_id,
            Feedback.citation_id.is_(None)
            if citation_id is None
            else Feedback.citation_id == citation_id,
        )
    )


def list_unanswered(page: int, per_page: int, namespace: str | None = None) -> dict:
    """Questions the knowledge base could not answer, most asked first."""
    query = select(UnansweredQuestion)
    count = select(func.count(UnansweredQuestion.id))
    if namespace:
        query = query.where(UnansweredQuestion.namespace_guess == namespace)
        count = count.where(UnansweredQuestion.namespace_guess == namespace)
    rows = db.session.scalars(
        query.order_by(
            UnansweredQuestion.count.desc(),
            UnansweredQuestion.last_seen.desc(),
            UnansweredQuestion.id,
        )
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return {
        "items": [row.to_dict() for row in rows],
        "page": page,
        "per_page": per_page,
        "total": db.session.scalar(count) or 0,
    }


def unanswered_summary(top: int = 10) -> dict:
    distinct, asks = db.session.execute(
        select(
            func.count(UnansweredQuestion.id), func.coalesce(func.sum(UnansweredQuestion.count), 0)
        )
    ).one()
    return {"questions": int(distinct), "asks": int(asks), "top": list_unanswered(1, top)["items"]}


def feedback_summary(recent: int = 20, worst: int = 10) -> dict:
    """Counts up/down (answers and citations), the latest comments, and the documents whose citations
    were rated down most (net score = up − down, lowest first)."""
    is_up = case((Feedback.rating == "up", 1), else_=0)
    is_down = case((Feedback.rating == "down", 1), else_=0)
    counts = {"answers": {"up": 0, "down": 0}, "citations": {"up": 0, "down": 0}}
    for on_citation, up, down in db.session.execute(
        select(Feedback.citation_id.is_not(None), func.sum(is_up), func.sum(is_down)).group_by(
            Feedback.citation_id.is_not(None)
        )
    ):
        counts["citations" if on_citation else "answers"] = {
            "up": int(up or 0),
            "down": int(down or 0),
        }
    comments = db.session.execute(
        select(Feedback, User.username)
        .join(User, User.id == Feedback.user_id)
        .where(Feedback.comment.is_not(None))
        .order_by(Feedback.created_at.desc(), Feedback.id.desc())
        .limit(recent)
    ).all()
    up_sum, down_sum = func.sum(is_up), func.sum(is_down)
    documents = db.session.execute(
        select(Citation.document_id, func.max(Document.title), up_sum, down_sum)
        .join(Feedback, Feedback.citation_id == Citation.id)
        .outerjoin(Document, Document.id == Citation.document_id)
        .where(Citation.document_id.is_not(None))
        .group_by(Citation.document_id)
        .having(down_sum > 0)
        .order_by((up_sum - down_sum).asc(), down_sum.desc(), Citation.document_id)
        .limit(worst)
    ).all()
    return {
        "up": counts["answers"]["up"] + counts["citations"]["up"],
        "down": counts["answers"]["down"] + counts["citations"]["down"],
        **counts,
        "recent_comments": [
            {**feedback_dict(row), "username": username} for row, username in comments
        ],
        "worst_documents": [
            {
                "document_id": doc_id,
                "title": title,
                "up": int(up or 0),
                "down": int(down or 0),
                "score": int(up or 0) - int(down or 0),
            }
            for doc_id, title, up, down in documents
        ],
    }
