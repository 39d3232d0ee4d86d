"""What one pipeline run needs besides its state: providers, index, registry, cancellation."""

from __future__ import annotations

import threading
from collections.abc import Callable
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
    # Where the nodes send {"citations": …} / {"token": …}: set by graph.run_turn_into so a turn's
    # tokens go straight to the turn instead of one LangGraph custom event each (~0.03 ms of CPU
    # per token in LangGraph's stream queue; bench/profile_turn.py). None: LangGraph's writer.
    sink: Callable[[dict], None] | None = None

    @property
    def retriever(self) -> Retriever:
        return self.retriever_override or retriever_for(self.index)

    def writer(self, runtime) -> Callable[[dict], None]:
        return self.sink or runtime.stream_writer

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()
