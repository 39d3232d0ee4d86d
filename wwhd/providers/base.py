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


class ProviderError(Exception):
    """A chat model failed. Providers raise these (mapping their SDK's errors), so the turn relay
    reads a code and a message fit for the user without knowing any SDK. `status_code` is the
    provider's HTTP status when there was one; the SDK's own exception is the __cause__, for the
    log's type name only (its message can echo part of the API key)."""

    code = "LLM_ERROR"
    user_message = "The language model failed while answering. Please try again."

    def __init__(self, status_code: int | None = None):
        super().__init__(self.code)
        self.status_code = status_code


class ProviderRateLimited(ProviderError):
    code = "LLM_RATE_LIMITED"
    user_message = "The language model is busy (rate limited). Please try again shortly."


class ProviderTimeout(ProviderError):
    code = "LLM_TIMEOUT"
    user_message = "The language model took too long to respond. Please try again."
