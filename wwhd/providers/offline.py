"""Offline provider: an extractive answer quoted from the retrieved passages, no network."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .base import AnswerRequest, Usage
from .local_embed import LocalEmbedder

MODEL_NAME = "offline-extractive"
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'“(])")
TOKEN_RE = re.compile(r"\S+\s*")
INTRO = (
    "Here is what Herman says about this in his own material (offline mode: quoted, not generated)."
)


MARKUP_RE = re.compile(r"(^|\s)#{1,6}\s+|[*_`]{1,3}(?=\S)|(?<=\S)[*_`]{1,3}|^\s*[-*+>]\s+", re.M)
QUOTE_WINDOW_CHARS = 700  # the text after the cited line the quote is taken from (~2-3 sentences)


def plain(text: str) -> str:
    """Markdown markup (headings, emphasis, bullets) removed: quotes read as speech."""
    return " ".join(MARKUP_RE.sub(" ", text).split())


def split_sentences(text: str) -> list[tuple[int, str]]:
    """(offset, sentence) of each sentence longer than 20 characters."""
    out, start = [], 0
    for match in SENTENCE_RE.finditer(text + " A"):
        sentence = text[start : match.start()].strip()
        if len(sentence) > 20:
            out.append((start, sentence))
        start = match.end()
    return out


def quote_for(passage: dict, query_vector, embedder, limit: int = 2) -> list[str]:
    """The sentences at the cited moment that are closest in meaning to the question, in order.

    Quoting from the cited line on keeps the quote and the link's second together."""
    text = passage["text"]
    offset = int(passage.get("moment_offset") or 0)
    window = [
        (pos, s)
        for pos, s in split_sentences(text)
        if pos + len(s) > offset and pos < offset + QUOTE_WINDOW_CHARS
    ] or split_sentences(text)[:limit]
    if not window:
        return []
    vectors = embedder.embed_array([s for _, s in window])
    scores = vectors @ query_vector
    best = sorted(sorted(range(len(window)), key=lambda i: -scores[i])[:limit])
    return [plain(window[i][1]) for i in best]


def compose_answer(request: AnswerRequest, max_sources: int = 3) -> str:
    embedder = LocalEmbedder()
    query_vector = embedder.embed_array([request.query or request.question])[0]
    lines = [INTRO, ""]
    seen: set[str] = set()  # overlapping chunks share sentences; quote each once
    for number, passage in enumerate(request.passages[:max_sources], start=1):
        fresh = [s for s in quote_for(passage, query_vector, embedder) if s not in seen]
        seen.update(fresh)
        # Nothing new in this passage still cites it, so the numbers shown stay consecutive.
        quote = " ".join(fresh) or plain(passage["text"])[:200]
        lines.append(f"- \u201c{quote}\u201d [{number}]")
    return "\n".join(lines)


class OfflineChatModel:
    name = MODEL_NAME
    offline = True

    def stream_answer(self, request: AnswerRequest) -> Iterator[str | Usage]:
        # Word-sized pieces so the client sees the same streaming shape as with a real model.
        yield from TOKEN_RE.findall(compose_answer(request))
        yield Usage(model=self.name)

    def complete(self, messages: list[dict]) -> tuple[str, Usage]:
        return "", Usage(model=self.name)

    def reachable(self) -> tuple[bool, str]:
        return True, "offline"
