"""One marshmallow schema per request and response of API v1.

Each schema is used three ways: `@bp.arguments(Schema)` validates and loads the request (errors
become the usual 422 with `fields`, see api/__init__.py), `@bp.response(status, Schema)` dumps the
reply, and both are what /api/v1/openapi.json says. Rules that need the database (a namespace that
exists, an e-mail not taken) stay in the services; schemas check shape, types and sizes.

Validators are small functions or validate.* objects in a field's `validate=[…]` list, so a new
rule (links http(s)-only, no bidi controls) is one more entry.
"""

from __future__ import annotations

import json
from datetime import datetime

from flask import current_app
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from ..knowledge.namespaces import NAME_PATTERN
from ..links import youtube_id
from ..models.accounts import ROLES
from ..models.knowledge import DOCUMENT_STATUSES
from ..validation import link_problem, strip_bidi


class Base(Schema):
    class Meta:
        unknown = EXCLUDE  # the original frontend sends extra fields; they are ignored
        ordered = True


class Strict(Base):
    class Meta:
        unknown = RAISE


# Names people see: bidi controls are stripped so a title cannot spoof what is shown (README).
BIDI_STRIPPED = frozenset({"title", "display_name", "filename", "name"})


# -- fields and validators --------------------------------------------------------------------------
class Text(fields.String):
    """A trimmed string; an empty one (after trimming) loads as None: "empty strings mean absent"."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if attr in BIDI_STRIPPED:
            text = strip_bidi(text)
        return text.strip() or None

    def _validate(self, value):
        if value is not None:  # absent: nothing to check
            super()._validate(value)


class RequiredText(fields.String):
    """A trimmed string that must not be empty."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", True)
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if attr in BIDI_STRIPPED:
            text = strip_bidi(text)
        text = text.strip()
        if not text:
            raise ValidationError("must not be empty")
        return text


class ConfigLength(validate.Length):
    """Length with a maximum read from app config, so the limit and the OpenAPI maxLength are the
    same number (MAX_MESSAGE_CHARS, not a copy of it)."""

    message_max = "too long (the limit is {max} characters)"

    def __init__(self, key: str):
        self.key = key
        super().__init__(min=None, max=None)

    @property
    def max(self):
        return current_app.config[self.key]

    @max.setter
    def max(self, _value):
        pass


class Tags(fields.List):
    """A list of words; a JSON list or comma-separated words in a string (multipart forms)."""

    def __init__(self, **kwargs):
        super().__init__(
            fields.String(validate=validate.Length(max=64)),
            validate=validate.Length(max=50),
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs):
        if value is None or value == "":
            return []
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
            value = value[0]  # a multipart form field arrives as a one-item list
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.lstrip().startswith("[") else value.split(",")
            except ValueError:
                raise ValidationError("a JSON list or comma-separated words") from None
        words = super()._deserialize(value, attr, data, **kwargs)
        return [strip_bidi(word).strip() for word in words if strip_bidi(word).strip()]


def http_url(value: str | None) -> None:
    """http(s) with a host, no user info, spaces, quotes or markup (wwhd/validation.py)."""
    problem = value is not None and link_problem(value)
    if problem:
        raise ValidationError(problem)


def youtube_link(value: str | None) -> None:
    http_url(value)
    if value is not None and not youtube_id(value):
        raise ValidationError(
            "not a YouTube video link (expected youtube.com/watch?v=…, youtu.be/… or /shorts/…)"
        )


def iso_date(value: str | None) -> None:
    if value is None:
        return
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError("must be a date like 2024-05-31") from None


def _url(*validators, **kwargs):
    return Text(allow_none=True, validate=[validate.Length(max=1000), *validators], **kwargs)


TIMESTAMP = {"description": "ISO 8601, UTC"}


def _ts():
    return fields.String(allow_none=True, metadata=TIMESTAMP)


# -- errors -----------------------------------------------------------------------------------------
class ErrorDetail(Base):
    code = fields.String(required=True, metadata={"examples": ["VALIDATION_ERROR", "NOT_FOUND"]})
    message = fields.String(required=True)
    fields_ = fields.List(fields.Dict(), data_key="fields", attribute="fields")
    request_id = fields.String(allow_none=True)


class Error(Base):
    """The one error body (PRODUCT.md §3); some errors add keys (e.g. duplicate_of on a 409)."""

    detail = fields.String(required=True)
    error = fields.Nested(ErrorDetail, required=True)


# -- accounts ---------------------------------------------------------------------------------------
class Register(Base):
    email = fields.String(required=True, validate=validate.Length(max=320))
    password = fields.String(required=True, validate=validate.Length(max=1024))
    username = fields.String(allow_none=True, validate=validate.Length(max=200))
    display_name = fields.String(allow_none=True, validate=validate.Length(max=200))


class Login(Base):
    email = fields.String(validate=validate.Length(max=320))
    username = fields.String(validate=validate.Length(max=320))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class TokenForm(Base):
    username = fields.String(required=True, validate=validate.Length(min=1, max=320))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class User(Base):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    username = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    is_active = fields.Boolean()
    display_name = fields.String(allow_none=True)
    settings = fields.Dict()
    created_at = _ts()
    last_login_at = _ts()


class Tokens(Base):
    access_token = fields.String(required=True)
    refresh_token = fields.String()
    token_type = fields.String(required=True, validate=validate.OneOf(["bearer"]))
    expires_in = fields.Integer(required=True)
    user = fields.Nested(User)


class Detail(Base):
    detail = fields.String(required=True)


class Usage(Base):
    date = fields.String()
    prompt_tokens = fields.Integer()
    completion_tokens = fields.Integer()
    total_tokens = fields.Integer()
    cost_usd = fields.Float()
    messages = fields.Integer()


class Profile(User):
    usage_today = fields.Nested(Usage)


class ProfileChange(Strict):
    display_name = fields.String(allow_none=True, validate=validate.Length(max=120))
    settings = fields.Dict(
        validate=lambda value: len(str(value)) <= 5000 or _fail("must be under 5 KB")
    )


class PasswordChange(Base):
    current_password = fields.String(required=True, validate=validate.Length(max=1024))
    new_password = fields.String(required=True, validate=validate.Length(max=1024))


def _fail(message: str):
    raise ValidationError(message)


# -- chat -------------------------------------------------------------------------------------------
class ChatRequest(Base):
    """The turn; `message` is accepted for `content` and `session_id` for `chat_id`."""

    content = fields.String(validate=ConfigLength("MAX_MESSAGE_CHARS"))
    message = fields.String(
        validate=ConfigLength("MAX_MESSAGE_CHARS"), metadata={"description": "alias of content"}
    )
    chat_id = fields.String(allow_none=True, validate=validate.Length(max=64))
    session_id = fields.String(
        allow_none=True, validate=validate.Length(max=64), metadata={"description": "alias"}
    )
    namespace = fields.String(allow_none=True, validate=validate.Length(max=64))


class ResumeHeaders(Base):
    """Where a resumed stream picks up: the `id:` of the last event the client received."""

    last_event_id = fields.Integer(
        data_key="Last-Event-ID",
        load_default=0,
        validate=validate.Range(min=0, max=2**31 - 1),
        metadata={"description": "the last event id received; 0 or absent: from the start"},
    )


class Citation(Base):
    id = fields.Integer()
    position = fields.Integer()
    title = fields.String()
    url = fields.String()
    youtube_url = fields.String(allow_none=True)
    timestamp = fields.String(allow_none=True)
    namespace = fields.String(allow_none=True)
    document_id = fields.Integer(allow_none=True)
    chunk_id = fields.String(allow_none=True)
    score = fields.Float(allow_none=True)


class ChatReply(Base):
    chat_id = fields.String(required=True)
    message_id = fields.String(required=True)
    content = fields.String(required=True)
    citations = fields.List(fields.Nested(Citation), required=True)
    status = fields.String()
    usage = fields.Dict()
    namespaces = fields.List(fields.String())
    model = fields.String()
    timings = fields.Dict()
    covered = fields.Boolean()
    llm_calls = fields.Integer()


# -- conversations ----------------------------------------------------------------------------------
class Paging(Base):
    page = fields.Integer(load_default=1, validate=validate.Range(1, 100000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class Chat(Base):
    id = fields.String(required=True)
    chat_id = fields.String()
    title = fields.String(required=True)
    created_at = _ts()
    updated_at = _ts()
    message_count = fields.Integer()


class Message(Base):
    id = fields.String(required=True)
    chat_id = fields.String()
    role = fields.String(required=True, validate=validate.OneOf(["user", "assistant"]))
    content = fields.String(required=True)
    status = fields.String(required=True)
    error = fields.String(allow_none=True)
    model = fields.String(allow_none=True)
    namespaces = fields.List(fields.String())
    created_at = _ts()
    completed_at = _ts()
    citations = fields.List(fields.Nested(Citation))


class ChatWithMessages(Chat):
    messages = fields.List(fields.Nested(Message), required=True)


class ChatPage(Base):
    items = fields.List(fields.Nested(Chat), required=True)
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class Rename(Base):
    title = RequiredText(validate=validate.Length(max=200))


class FeedbackRequest(Strict):
    rating = fields.String(required=True, validate=validate.OneOf(["up", "down"]))
    comment = fields.String(allow_none=True, validate=validate.Length(max=2000))
    citation_id = fields.Integer(allow_none=True, strict=True)


class Feedback(Base):
    id = fields.Integer(required=True)
    message_id = fields.String(required=True)
    citation_id = fields.Integer(allow_none=True)
    rating = fields.String(required=True)
    comment = fields.String(allow_none=True)
    created_at = _ts()


# -- knowledge base ---------------------------------------------------------------------------------
class NamespaceInput(Base):
    name = RequiredText(
        validate=validate.Regexp(
            NAME_PATTERN,
            error="2-64 lower-case letters, digits or '_', starting with a letter",
        )
    )
    description = Text(allow_none=True, validate=validate.Length(max=500))
    keywords = Tags()


class Namespace(Base):
    name = fields.String(required=True)
    description = fields.String()
    keywords = fields.List(fields.String())
    document_count = fields.Integer()


class ReindexCounts(Base):
    documents = fields.Integer(required=True)
    chunks = fields.Integer(required=True)
    orphans_deleted = fields.Integer()
    requeued = fields.List(fields.Integer())


class DocumentQuery(Base):
    namespace = Text(allow_none=True, validate=validate.Length(max=64))
    status = Text(allow_none=True, validate=validate.OneOf(DOCUMENT_STATUSES))
    skip = fields.Integer(load_default=0, validate=validate.Range(0, 10**9))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


class DocumentFields(Base):
    """Metadata an upload, a pasted document and an edit share."""

    title = Text(allow_none=True, validate=validate.Length(max=300))
    source_url = _url(http_url)
    youtube_url = _url(youtube_link)
    published_at = Text(allow_none=True, validate=[validate.Length(max=32), iso_date])
    tags = Tags()


class DocumentInput(DocumentFields):
    namespace = RequiredText(validate=validate.Length(max=64))
    title = RequiredText(validate=validate.Length(max=300))
    content = RequiredText(metadata={"description": "the document text"})


class DocumentChange(DocumentFields):
    """PUT and PATCH: only the fields sent change; a missing field keeps its value."""

    namespace = RequiredText(required=False, validate=validate.Length(max=64))
    title = RequiredText(required=False, validate=validate.Length(max=300))
    content = RequiredText(required=False)


class Upload(DocumentFields):
    """multipart/form-data: the file and its metadata (tags as comma-separated words or JSON)."""

    file = fields.Raw(
        required=True, metadata={"type": "string", "format": "binary"}
    )  # a werkzeug FileStorage
    namespace = RequiredText(validate=validate.Length(max=64))


class Document(Base):
    id = fields.Integer(required=True)
    namespace = fields.String(required=True)
    title = fields.String(required=True)
    kind = fields.String(allow_none=True)
    content = fields.String()
    source_url = fields.String(allow_none=True)
    youtube_url = fields.String(allow_none=True)
    published_at = fields.String(allow_none=True)
    tags = fields.List(fields.String())
    status = fields.String(required=True, validate=validate.OneOf(DOCUMENT_STATUSES))
    chunk_count = fields.Integer(allow_none=True)
    checksum = fields.String(allow_none=True)
    filename = fields.String(allow_none=True)
    size_bytes = fields.Integer(allow_none=True)
    created_at = _ts()
    updated_at = _ts()
    indexed_at = _ts()
    error = fields.String(allow_none=True)
    duplicate_of = fields.Integer(metadata={"description": "a failed duplicate queued again"})


class Deleted(Base):
    id = fields.Integer(required=True)
    deleted = fields.Boolean(required=True)


# -- admin ------------------------------------------------------------------------------------------
class UserQuery(Paging):
    q = fields.String(validate=validate.Length(max=200))
    role = fields.String(validate=validate.OneOf(ROLES))


class UserPage(Base):
    items = fields.List(fields.Nested(User), required=True)
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class UserChange(Strict):
    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = fields.Boolean(truthy={True}, falsy={False})


class UnansweredQuery(Paging):
    namespace = fields.String(validate=validate.Length(max=64))


class Unanswered(Base):
    id = fields.Integer()
    question = fields.String()
    namespace_guess = fields.String(allow_none=True)
    count = fields.Integer()
    first_seen = _ts()
    last_seen = _ts()


class UnansweredPage(Base):
    items = fields.List(fields.Nested(Unanswered), required=True)
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class FeedbackQuery(Base):
    recent = fields.Integer(load_default=20, validate=validate.Range(1, 100))
    worst = fields.Integer(load_default=10, validate=validate.Range(1, 100))


class FeedbackSummary(Base):
    up = fields.Integer()
    down = fields.Integer()
    answers = fields.Dict()
    citations = fields.Dict()
    recent_comments = fields.List(fields.Dict())
    worst_documents = fields.List(fields.Dict())


class Stats(Base):
    users = fields.Dict(required=True)
    usage = fields.Dict(required=True)
    chats = fields.Dict(required=True)
    documents = fields.Dict(required=True)
    unanswered = fields.Dict(required=True)
    feedback = fields.Dict(required=True)


# -- health -----------------------------------------------------------------------------------------
class Health(Base):
    status = fields.String(required=True, validate=validate.OneOf(["ok", "degraded"]))
    version = fields.String()
    environment = fields.String()
    checks = fields.Dict()
