"""SQL tables: the system of record (Qdrant is derived from these)."""

from .accounts import AuthSession, User
from .conversations import Chat, Citation, Feedback, Message, TokenUsage, UnansweredQuestion
from .knowledge import Chunk, Document, Namespace

__all__ = [
    "AuthSession",
    "User",
    "Chat",
    "Citation",
    "Feedback",
    "Message",
    "TokenUsage",
    "UnansweredQuestion",
    "Chunk",
    "Document",
    "Namespace",
]
