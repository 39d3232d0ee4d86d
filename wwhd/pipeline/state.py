"""The graph's state: one typed dict that nodes update piece by piece."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict


class ChatState(TypedDict, total=False):
    question: str  # the user's words, normalised
    history: list[dict]  # earlier turns [{role, content}], oldest first
    namespace_hint: str | None  # the client's namespace, if any
    query: str  # stand-alone retrieval query (follow-ups rewritten)
    namespaces: list[str]  # routed namespaces, `general` included
    route_confidence: float
    route_method: str  # hint | keywords | retrieval | llm
    passages: list[dict]  # retrieved, cut and de-duplicated; [n] is passages[n-1]
    citations: list[dict]  # the passages the answer cites, with their [n] as `position`
    kb_available: bool  # False when Qdrant could not be searched
    covered: bool  # the knowledge base has something on the question
    evidence: dict | None  # the coverage decision's signals (retrieval.coverage.Evidence)
    answer: str
    safety: list[str]  # rule names that fired
    crisis: bool  # self-harm: a safe reply replaces the answer
    usage: Annotated[list[dict], operator.add]
    llm_calls: Annotated[int, operator.add]
    timings: Annotated[dict, operator.or_]
