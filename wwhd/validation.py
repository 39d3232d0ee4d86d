"""Input checks shared by every route (wwhd/api/guard.py) and by field validators (views, schemas).

Plain functions, no Flask: a view, a marshmallow/flask-smorest schema or a CLI command can call them
and turn the returned problem into its own error (schemas: raise marshmallow.ValidationError(problem)).

- JSON bodies: at most MAX_JSON_DEPTH levels of objects/arrays, and no lone surrogate ("\\ud800")
  in any string or key; `loads_checked` parses and checks, raising JsonProblem (a ValueError).
- Links (`source_url`, `youtube_url`): `link_problem(url)` → None when it is http(s) with a host,
  no user name or password, and none of the characters that could break out of an HTML attribute.
- Names, titles, filenames: `strip_bidi(text)` removes the Unicode bidirectional controls
  (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069). They are stripped, not refused: they carry
  no letters, right-to-left text displays without them, and pasted text often holds a stray mark;
  left in, an override (U+202E) makes "evil\\u202efdp.exe" display as "evilexe.pdf".
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

MAX_JSON_DEPTH = 32  # our bodies are at most 3 deep; 32 leaves room for client settings objects
MAX_URL_LENGTH = 1000  # the size of the url columns

_SURROGATE = re.compile("[\ud800-\udfff]")
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")
# Not allowed unencoded in a URL (RFC 3986), or able to end an HTML attribute or start markup.
_URL_MARKUP = set("<>\"'`\\{}|^")


class JsonProblem(ValueError):
    """The body parses as JSON but is refused; `field` names the top-level key when there is one."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def check_json_value(value: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise JsonProblem when `value` nests deeper than `max_depth` or holds a lone surrogate."""
    # Iterative (the body decides the depth); each entry: (value, depth, top-level key).
    stack: list[tuple[Any, int, str | None]] = [(value, 0, None)]
    while stack:
        item, depth, field = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise JsonProblem(_surrogate_message(field), field)
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                raise JsonProblem(_depth_message(max_depth))
            if isinstance(item, dict):
                for key, child in item.items():
                    if _SURROGATE.search(key):  # never echoed back: the reply must be valid text
                        raise JsonProblem(_surrogate_message(field), field)
                    stack.append((child, depth + 1, field if depth else key))
            else:
                stack.extend((child, depth + 1, field) for child in item)


def loads_checked(data: str | bytes, **kwargs: Any) -> Any:
    """json.loads, then check_json_value. Raises JsonProblem, or json's own ValueError."""
    try:
        value = json.loads(data, **kwargs)
    except RecursionError:  # json's C decoder gives up near 1,000 levels, before our check runs
        raise JsonProblem(_depth_message(MAX_JSON_DEPTH)) from None
    check_json_value(value)
    return value


def _depth_message(max_depth: int) -> str:
    return f"The JSON body is nested too deeply: at most {max_depth} levels of objects and arrays."


def _surrogate_message(field: str | None) -> str:
    where = f"Field '{field}'" if field else "The JSON body"
    return (
        f"{where} contains a lone surrogate escape (like \\ud800), which is not a character; "
        "send text as valid Unicode."
    )


def strip_bidi(text: str) -> str:
    """`text` without bidirectional control characters (see the module docstring)."""
    return _BIDI.sub("", text)


def link_problem(url: str) -> str | None:
    """Why `url` cannot be stored as a link shown to people, or None when it can."""
    if len(url) > MAX_URL_LENGTH:
        return f"is longer than {MAX_URL_LENGTH} characters"
    for ch in url:
        if ch in _URL_MARKUP or ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Cs"):
            return (
                f"contains {ch!r}; spaces, quotes, '<', '>' and other markup or control "
                "characters must be percent-encoded"
            )
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an http:// or https:// link"
    if "@" in parts.netloc:
        return "must not contain a user name or password"
    host = parts.hostname or ""
    if not host:
        return "must name a host (https://example.com/…)"
    bracketed = parts.netloc.startswith("[")
    if not all(ch.isalnum() or ch in "-._" or (bracketed and ch == ":") for ch in host):
        return f"has an invalid host {host!r}"
    try:
        _ = parts.port  # raises on a port that is no number or beyond 65535
    except ValueError:
        return "has an invalid port"
    return None
