"""LLM and embedding providers: OpenAI-compatible over HTTP, or offline."""

from .base import AnswerRequest, ChatModel, Embedder, Usage
from .factory import make_chat_model, make_embedder

__all__ = ["AnswerRequest", "ChatModel", "Embedder", "Usage", "make_chat_model", "make_embedder"]
