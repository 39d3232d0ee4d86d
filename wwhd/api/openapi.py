"""The OpenAPI 3.1 document for API v1 (hand-written) and a small self-contained docs page."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template_string

from ..security import csp_nonce

bp = Blueprint("openapi", __name__)

JSON = "application/json"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _body(schema: dict, required: bool = True) -> dict:
    return {"required": required, "content": {JSON: {"schema": schema}}}


def _errors(*extra: int) -> dict:
    """Every operation can answer a 4xx in the one error shape; some also 503."""
    responses = {
        "4XX": {
            "description": "Client error (see error.code)",
            "content": {JSON: {"schema": _ref("Error")}},
            "headers": {
                "Retry-After": {
                    "description": "On 429: seconds to wait",
                    "schema": {"type": "string"},
                }
            },
        }
    }
    for status in extra:
        responses[str(status)] = {
            "description": "Dependency unavailable",
            "content": {JSON: {"schema": _ref("Error")}},
        }
    return responses


def _op(
    summary: str,
    responses: dict,
    *,
    tag: str,
    auth: bool = True,
    body: dict | None = None,
    params: list | None = None,
    extra: tuple[int, ...] = (),
) -> dict:
    op = {"summary": summary, "tags": [tag], "responses": {**responses, **_errors(*extra)}}
    if not auth:
        op["security"] = []
    if body:
        op["requestBody"] = body
    if params:
        op["parameters"] = params
    return op


def _query(name: str, schema: dict, description: str = "") -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


NULLABLE_STR = {"type": ["string", "null"]}
TIMESTAMP = {"type": ["string", "null"], "description": "ISO 8601, UTC"}
LINK = {
    "type": ["string", "null"],
    "maxLength": 1000,
    "description": "An http(s) link with a host; no user name or password, spaces, quotes, "
    "'<', '>' or other markup characters (percent-encode them). wwhd.validation.link_problem.",
}

SCHEMAS: dict = {
    "Error": {
        "type": "object",
        "required": ["detail", "error"],
        "properties": {
            "detail": {"type": "string"},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "type": "string",
                        "examples": ["VALIDATION_ERROR", "UNAUTHORIZED", "RATE_LIMITED"],
                    },
                    "message": {"type": "string"},
                    "fields": {"type": "array", "items": {"type": "object"}},
                    "request_id": NULLABLE_STR,
                },
            },
        },
    },
    "User": {
        "type": "object",
        "required": ["id", "email", "username", "role"],
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "username": {"type": "string"},
            "role": {"enum": ["viewer", "user", "admin"]},
            "is_active": {"type": "boolean"},
            "display_name": NULLABLE_STR,
            "settings": {"type": "object"},
            "created_at": TIMESTAMP,
            "last_login_at": TIMESTAMP,
        },
    },
    "Tokens": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": {"type": "string"},
            "refresh_token": {"type": "string"},
            "token_type": {"const": "bearer"},
            "expires_in": {"type": "integer"},
            "user": _ref("User"),
        },
    },
    "Register": {
        "type": "object",
        "required": ["email", "password"],
        "properties": {
            "email": {"type": "string", "format": "email"},
            "password": {"type": "string", "minLength": 8},
            "username": {"type": "string"},
            "display_name": {"type": "string"},
        },
    },
    "Login": {
        "type": "object",
        "required": ["password"],
        "properties": {
            "email": {"type": "string"},
            "username": {"type": "string"},
            "password": {"type": "string"},
        },
    },
    "Usage": {
        "type": "object",
        "properties": {
            "date": {"type": "string"},
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"},
            "cost_usd": {"type": "number"},
            "messages": {"type": "integer"},
        },
    },
    "Citation": {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "url": {"type": "string"},
            "youtube_url": NULLABLE_STR,
            "timestamp": {"type": "string"},
            "namespace": {"type": "string"},
            "document_id": {"type": ["integer", "null"]},
            "chunk_id": NULLABLE_STR,
            "score": {"type": "number"},
        },
    },
    "ChatRequest": {
        "type": "object",
        "properties": {
            "content": {"type": "string", "maxLength": 4000},
            "message": {"type": "string", "description": "alias of content"},
            "chat_id": NULLABLE_STR,
            "session_id": NULLABLE_STR,
            "namespace": NULLABLE_STR,
        },
    },
    "ChatReply": {
        "type": "object",
        "required": ["chat_id", "message_id", "content", "citations"],
        "properties": {
            "chat_id": {"type": "string"},
            "message_id": {"type": "string"},
            "content": {"type": "string"},
            "citations": {"type": "array", "items": _ref("Citation")},
            "status": {"type": "string"},
            "usage": {"type": "object"},
            "namespaces": {"type": "array", "items": {"type": "string"}},
            "model": {"type": "string"},
            "timings": {"type": "object"},
        },
    },
    "Chat": {
        "type": "object",
        "required": ["id", "title"],
        "properties": {
            "id": {"type": "string"},
            "chat_id": {"type": "string"},
            "title": {"type": "string"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "message_count": {"type": "integer"},
        },
    },
    "Message": {
        "type": "object",
        "required": ["id", "role", "content", "status"],
        "properties": {
            "id": {"type": "string"},
            "chat_id": {"type": "string"},
            "role": {"enum": ["user", "assistant"]},
            "content": {"type": "string"},
            "status": {"type": "string"},
            "error": NULLABLE_STR,
            "model": NULLABLE_STR,
            "namespaces": {"type": "array"},
            "created_at": TIMESTAMP,
            "completed_at": TIMESTAMP,
            "citations": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Page": {
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {"type": "array"},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
        },
    },
    "Document": {
        "type": "object",
        "required": ["id", "namespace", "title", "status"],
        "properties": {
            "id": {"type": "integer"},
            "namespace": {"type": "string"},
            "title": {"type": "string"},
            "content": {"type": "string"},
            "source_url": NULLABLE_STR,
            "youtube_url": NULLABLE_STR,
            "status": {"enum": ["pending", "processing", "indexed", "failed"]},
            "chunk_count": {"type": ["integer", "null"]},
            "created_at": TIMESTAMP,
            "indexed_at": TIMESTAMP,
            "error": NULLABLE_STR,
            "tags": {"type": "array"},
        },
    },
    "DocumentInput": {
        "type": "object",
        "required": ["namespace", "title", "content"],
        "properties": {
            "namespace": {"type": "string"},
            "title": {"type": "string"},
            "content": {"type": "string"},
            "source_url": LINK,
            "youtube_url": LINK,
            "published_at": NULLABLE_STR,
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Namespace": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "document_count": {"type": "integer"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": ["ok", "degraded"]},
            "version": {"type": "string"},
            "environment": {"type": "string"},
            "checks": {"type": "object"},
        },
    },
}

PAGING = [
    _query("page", {"type": "integer", "minimum": 1}),
    _query("per_page", {"type": "integer", "minimum": 1, "maximum": 100}),
]


def build_spec(version: str) -> dict:
    """The document served at /api/v1/openapi.json (PRODUCT.md §3)."""
    chat_id, doc_id = (
        _path("chat_id", {"type": "string"}),
        _path("document_id", {"type": "integer"}),
    )
    sse = {
        "description": "Server-sent events: start, citation, token…, metadata, done (or error)",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
    paths = {
        "/health": {
            "get": _op(
                "Liveness (no I/O)", {"200": _json(_ref("Health"))}, tag="health", auth=False
            )
        },
        "/health/detailed": {
            "get": _op(
                "Dependency health",
                {"200": _json(_ref("Health")), "503": _json(_ref("Health"), "Degraded")},
                tag="health",
                auth=False,
            )
        },
        "/api/v1/auth/register": {
            "post": _op(
                "Create an account",
                {"201": _json(_ref("Tokens"), "Created")},
                tag="auth",
                auth=False,
                body=_body(_ref("Register")),
            )
        },
        "/api/v1/auth/signup": {
            "post": _op(
                "Alias of register",
                {"201": _json(_ref("Tokens"), "Created")},
                tag="auth",
                auth=False,
                body=_body(_ref("Register")),
            )
        },
        "/api/v1/auth/login": {
            "post": _op(
                "Log in (JSON)",
                {"200": _json(_ref("Tokens"))},
                tag="auth",
                auth=False,
                body=_body(_ref("Login")),
            )
        },
        "/api/v1/auth/token": {
            "post": _op(
                "OAuth2 password grant (form)",
                {"200": _json(_ref("Tokens"))},
                tag="auth",
                auth=False,
                body={
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "required": ["username", "password"],
                                "properties": {
                                    "username": {"type": "string"},
                                    "password": {"type": "string"},
                                },
                            }
                        }
                    },
                },
            )
        },
        "/api/v1/auth/refresh": {
            "post": _op(
                "New access token (send the refresh token)",
                {"200": _json(_ref("Tokens"))},
                tag="auth",
            )
        },
        "/api/v1/auth/logout": {
            "post": _op("Revoke this login session", {"200": _json({"type": "object"})}, tag="auth")
        },
        "/api/v1/auth/me": {
            "get": _op("The signed-in user", {"200": _json(_ref("User"))}, tag="auth")
        },
        "/api/v1/me": {
            "get": _op("Profile, settings and usage today", {"200": _json(_ref("User"))}, tag="me"),
            "patch": _op(
                "Change display name or settings",
                {"200": _json(_ref("User"))},
                tag="me",
                body=_body(
                    {
                        "type": "object",
                        "properties": {
                            "display_name": NULLABLE_STR,
                            "settings": {"type": "object"},
                        },
                    }
                ),
            ),
        },
        "/api/v1/me/password": {
            "post": _op(
                "Change password; every earlier token stops working, new tokens are returned",
                {"200": _json(_ref("Tokens"))},
                tag="me",
                body=_body(
                    {
                        "type": "object",
                        "required": ["current_password", "new_password"],
                        "properties": {
                            "current_password": {"type": "string"},
                            "new_password": {"type": "string", "minLength": 8},
                        },
                    }
                ),
            )
        },
        "/api/v1/chat/stream": {
            "post": _op(
                "Ask; the answer streams as SSE",
                {"200": sse},
                tag="chat",
                body=_body(_ref("ChatRequest")),
            )
        },
        "/api/v1/chat": {
            "post": _op(
                "Ask; one JSON reply",
                {"200": _json(_ref("ChatReply"))},
                tag="chat",
                body=_body(_ref("ChatRequest")),
                extra=(503,),
            )
        },
        "/api/v1/chats": {
            "get": _op(
                "Your chats, newest first", {"200": _json(_ref("Page"))}, tag="chats", params=PAGING
            )
        },
        "/api/v1/chats/{chat_id}": {
            "get": _op(
                "One chat with its messages",
                {"200": _json({**_ref("Chat")})},
                tag="chats",
                params=[chat_id],
            ),
            "patch": _op(
                "Rename",
                {"200": _json(_ref("Chat"))},
                tag="chats",
                params=[chat_id],
                body=_body(
                    {
                        "type": "object",
                        "required": ["title"],
                        "properties": {"title": {"type": "string"}},
                    }
                ),
            ),
            "delete": _op(
                "Delete with its messages",
                {"200": _json({"type": "object"})},
                tag="chats",
                params=[chat_id],
            ),
        },
        "/api/v1/messages/{message_id}/feedback": {
            "post": _op(
                "Thumbs up/down on an answer",
                {"200": _json({"type": "object"}), "201": _json({"type": "object"}, "Created")},
                tag="chats",
                params=[_path("message_id", {"type": "string"})],
                body=_body(
                    {
                        "type": "object",
                        "properties": {
                            "rating": {"type": "string"},
                            "comment": {"type": "string"},
                            "citation_id": {"type": ["integer", "null"]},
                        },
                    }
                ),
            )
        },
        "/api/v1/documents/namespaces": {
            "get": _op(
                "Namespaces with document counts",
                {"200": _json({"type": "array", "items": _ref("Namespace")})},
                tag="documents",
            )
        },
        "/api/v1/namespaces": {
            "post": _op(
                "Add a namespace",
                {"200": _json(_ref("Namespace")), "201": _json(_ref("Namespace"), "Created")},
                tag="documents",
                body=_body(
                    {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "description": {"type": "string"},
                            "keywords": {"type": "array", "items": {"type": "string"}},
                        },
                    }
                ),
            )
        },
        "/api/v1/namespaces/{name}/reindex": {
            "post": _op(
                "Reindex a namespace",
                {"200": _json({"type": "object"}), "202": _json({"type": "object"}, "Accepted")},
                tag="documents",
                params=[_path("name", {"type": "string"})],
                extra=(503,),
            )
        },
        "/api/v1/documents/": {
            "get": _op(
                "List documents",
                {"200": _json({"type": "array", "items": _ref("Document")})},
                tag="documents",
                params=[
                    _query("namespace", {"type": "string"}),
                    _query("status", {"type": "string"}),
                    _query("skip", {"type": "integer", "minimum": 0}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                ],
            ),
            "post": _op(
                "Add a document from JSON text",
                {
                    "201": _json(_ref("Document"), "Created"),
                    "202": _json(_ref("Document"), "Accepted"),
                },
                tag="documents",
                body=_body(_ref("DocumentInput")),
            ),
        },
        "/api/v1/documents/upload": {
            "post": _op(
                "Upload a transcript, article or PDF (10 MB)",
                {
                    "201": _json(_ref("Document"), "Created"),
                    "202": _json(_ref("Document"), "Accepted"),
                },
                tag="documents",
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file", "namespace"],
                                "properties": {
                                    "file": {
                                        "type": "string",
                                        "contentMediaType": "application/octet-stream",
                                    },
                                    "namespace": {"type": "string"},
                                    "title": {"type": "string"},
                                    "youtube_url": {"type": "string"},
                                    "source_url": {"type": "string"},
                                    "published_at": {"type": "string"},
                                    "tags": {"type": "string"},
                                },
                            }
                        }
                    },
                },
            )
        },
        "/api/v1/documents/{document_id}": {
            "get": _op(
                "One document", {"200": _json(_ref("Document"))}, tag="documents", params=[doc_id]
            ),
            "put": _op(
                "Replace fields (content change → reindex)",
                {"200": _json(_ref("Document")), "202": _json(_ref("Document"), "Accepted")},
                tag="documents",
                params=[doc_id],
                body=_body({"type": "object"}),
            ),
            "patch": _op(
                "Change fields (content change → reindex)",
                {"200": _json(_ref("Document")), "202": _json(_ref("Document"), "Accepted")},
                tag="documents",
                params=[doc_id],
                body=_body({"type": "object"}),
            ),
            "delete": _op(
                "Delete from SQL and the index",
                {"200": _json({"type": "object"})},
                tag="documents",
                params=[doc_id],
                extra=(503,),
            ),
        },
        "/api/v1/documents/{document_id}/reindex": {
            "post": _op(
                "Reindex one document",
                {"200": _json(_ref("Document")), "202": _json(_ref("Document"), "Accepted")},
                tag="documents",
                params=[doc_id],
            )
        },
        "/api/v1/admin/stats": {
            "get": _op(
                "Users, usage, cost, documents, unanswered",
                {"200": _json({"type": "object"})},
                tag="admin",
            )
        },
        "/api/v1/admin/unanswered": {
            "get": _op(
                "Questions the knowledge base could not answer",
                {"200": _json({"type": "object"})},
                tag="admin",
                params=PAGING,
            )
        },
        "/api/v1/admin/feedback": {
            "get": _op("Feedback summary", {"200": _json({"type": "object"})}, tag="admin")
        },
        "/api/v1/admin/users": {
            "get": _op("Users", {"200": _json(_ref("Page"))}, tag="admin", params=PAGING)
        },
        "/api/v1/admin/users/{user_id}": {
            "patch": _op(
                "Change role or active flag",
                {"200": _json(_ref("User"))},
                tag="admin",
                params=[_path("user_id", {"type": "integer"})],
                body=_body(
                    {
                        "type": "object",
                        "properties": {
                            "role": {"enum": ["viewer", "user", "admin"]},
                            "is_active": {"type": "boolean"},
                        },
                    }
                ),
            ),
            "delete": _op(
                "Delete the account with its chats; its tokens stop working",
                {"204": {"description": "Deleted"}},
                tag="admin",
                params=[_path("user_id", {"type": "integer"})],
            ),
        },
    }
    # Only describe what this build serves (routes are added by area as they land).
    served = {_openapi_path(rule.rule) for rule in current_app.url_map.iter_rules()}
    paths = {path: item for path, item in paths.items() if path in served}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "WWHD API",
            "version": version,
            "description": "What Would Herman Do? Answers grounded in the teacher's own material. Errors are "
            "JSON `{detail, error: {code, message, fields, request_id}}`; 429s carry Retry-After.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _openapi_path(rule: str) -> str:
    """/api/v1/documents/<int:document_id> → /api/v1/documents/{document_id}"""
    out, depth, name = [], 0, ""
    for char in rule:
        if char == "<":
            depth, name = 1, ""
        elif char == ">":
            depth = 0
            out.append("{" + name.split(":")[-1] + "}")
        elif depth:
            name += char
        else:
            out.append(char)
    return "".join(out)


@bp.get("/openapi.json")
def spec():
    return jsonify(build_spec(current_app.config["VERSION"]))


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WWHD API v1</title>
<style nonce="{{ nonce }}">body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
code{background:#f3f3f3;padding:0 .3em}.m{display:inline-block;width:4.5rem;font-weight:600}</style></head>
<body><h1>WWHD API v1</h1><p>Machine-readable: <a href="openapi.json"><code>/api/v1/openapi.json</code></a>
(OpenAPI 3.1). Send <code>Authorization: Bearer &lt;access_token&gt;</code> from <code>/api/v1/auth/login</code>.</p>
<div id="ops">Loading…</div>
<script nonce="{{ nonce }}">
fetch("openapi.json").then(r => r.json()).then(spec => {
  const root = document.getElementById("ops"); root.textContent = "";
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const row = document.createElement("p");
      const m = document.createElement("span"); m.className = "m"; m.textContent = method.toUpperCase();
      const p = document.createElement("code"); p.textContent = path;
      row.append(m, p, document.createTextNode(" \u2014 " + (op.summary || "")));
      root.append(row);
    }
  }
});
</script></body></html>"""


@bp.get("/docs")
def docs():
    return render_template_string(DOCS_PAGE, nonce=csp_nonce())
