"""Offline provider: an extractive answer quoted from the retrieved passages, no network."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..knowledge.sparse import tokenize
from .base import AnswerRequest, Usage

MODEL_NAME = "offline-extractive"
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'“(])")
TOKEN_RE = re.compile(r"\S+\s*")
INTRO = (
    "Here is what Herman says about this in his own material (offline mode: quoted, not generated)."
)


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_RE.split(" ".join(text.split())) if len(s.strip()) > 20]


def best_sentences(text: str, query_terms: set[str], limit: int = 2) -> list[str]:
    """The sentences sharing most terms with the query, kept in their original order."""
    sentences = split_sentences(text)
    scored = []
    for position, sentence in enumerate(sentences):
        terms = set(tokenize(sentence))
        overlap = len(terms & query_terms)
        if overlap:
            scored.append((overlap / (1 + 0.01 * len(sentence)), position, sentence))
    scored.sort(key=lambda item: (-item[0], item[1]))
    chosen = sorted(scored[:limit], key=lambda item: item[1])
    if not chosen and sentences:
        return sentences[:1]
    return [sentence for _, _, sentence in chosen]


def compose_answer(request: AnswerRequest, max_sources: int = 3) -> str:
    query_terms = set(tokenize(request.query or request.question))
    lines = [INTRO, ""]
    seen: set[str] = set()  # overlapping chunks share sentences; quote each once
    for number, passage in enumerate(request.passages[:max_sources], start=1):
        fresh = [s for s in best_sentences(passage["text"], query_terms, limit=4) if s not in seen][
            :2
        ]
        seen.update(fresh)
        if fresh:
            lines.append(f"- \u201c{' '.join(fresh)}\u201d [{number}]")
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
