"""What one pipeline run needs besides its state: providers, index, registry, cancellation."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ..knowledge.index import KnowledgeIndex
from ..knowledge.namespaces import NamespaceInfo
from ..providers.base import ChatModel


class Cancelled(Exception):
    """The client went away; stop generating."""


@dataclass(frozen=True)
class PipelineContext:
    chat_model: ChatModel
    index: KnowledgeIndex
    registry: tuple[NamespaceInfo, ...]
    cancel: threading.Event = field(default_factory=threading.Event)
    search_limit: int = 20
    max_passages: int = 5
    relative_cutoff: float = 0.45  # keep hits scoring at least this share of the best one
    min_coverage: float = 0.5  # share of query terms the best passage must contain
    llm_routing: bool = True  # ask the LLM when keywords and retrieval cannot decide

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()
