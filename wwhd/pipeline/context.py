"""What one pipeline run needs besides its state: providers, index, registry, cancellation."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ..knowledge.index import KnowledgeIndex
from ..knowledge.namespaces import NamespaceInfo
from ..providers.base import ChatModel
from ..retrieval import Retriever, retriever_for


class Cancelled(Exception):
    """The client went away; stop generating."""


@dataclass(frozen=True)
class PipelineContext:
    chat_model: ChatModel
    index: KnowledgeIndex
    registry: tuple[NamespaceInfo, ...]
    cancel: threading.Event = field(default_factory=threading.Event)
    llm_routing: bool = True  # ask the LLM when keywords and retrieval cannot decide
    retriever_override: Retriever | None = None  # tests and evaluation may pass their own

    @property
    def retriever(self) -> Retriever:
        return self.retriever_override or retriever_for(self.index)

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()
