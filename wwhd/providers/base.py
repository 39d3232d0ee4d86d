"""What the pipeline needs from a chat model and an embedder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Usage:
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    kind: str = "chat"  # chat | embedding

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "kind": self.kind,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class AnswerRequest:
    question: str  # the user's words
    query: str  # stand-alone form used for retrieval
    passages: list[dict]  # numbered sources, passages[i] is [i + 1]
    messages: list[dict] = field(default_factory=list)  # the full prompt for LLM providers


class ChatModel(Protocol):
    name: str
    offline: bool

    def stream_answer(self, request: AnswerRequest) -> Iterator[str | Usage]:
        """Yield answer text pieces as they arrive, then one Usage. Raises on provider failure."""

    def complete(self, messages: list[dict]) -> tuple[str, Usage]:
        """One short non-streamed completion (routing, rewriting)."""

    def reachable(self) -> tuple[bool, str]:
        """A cheap check that the provider answers (for /health/detailed); never raises."""


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> tuple[list[list[float]], Usage]:
        """Dense vectors for texts, in order."""
