"""Query analysis: follow-ups made stand-alone, and which namespaces a question's words name."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..knowledge.sparse import term_set, tokenize

# Words that make a short question lean on the one before it (pronouns, "what about", "more").
FOLLOW_UP_RE = re.compile(
    r"\b(it|that|this|those|these|them|he|his|him|she|her|they|their|there|more|else|again|"
    r"also|instead|still|what about|how about|and|then|why|example|longer|how long|how often)\b",
    re.I,
)
FOLLOW_UP_MAX_TERMS = 10  # a longer question stands on its own even if it says "it"
FOLLOW_UP_DEPTH = 3  # earlier user turns a chain of follow-ups may reach back to


def is_follow_up(question: str) -> bool:
    terms = tokenize(question)
    return len(terms) <= 3 or (
        len(terms) <= FOLLOW_UP_MAX_TERMS and bool(FOLLOW_UP_RE.search(question))
    )


def standalone_query(question: str, history: list[dict], _depth: int = FOLLOW_UP_DEPTH) -> str:
    """Rewrite a follow-up into a stand-alone query by carrying the earlier question's words.

    A rule, not an LLM call: it keeps the common path at one LLM call per answer, and for hybrid
    search the earlier question's words are what a rewrite would add anyway. The earlier question
    is itself resolved first, so a chain of follow-ups keeps the topic it started from.
    """
    users = [
        i for i, turn in enumerate(history) if turn.get("role") == "user" and turn.get("content")
    ]
    if not users or _depth <= 0 or not is_follow_up(question):
        return question
    last = users[-1]
    previous = standalone_query(history[last]["content"], history[:last], _depth - 1)
    return f"{previous} {question}"


def keyword_scores(query: str, registry: Iterable) -> dict[str, int]:
    """Namespace → how many of the question's terms its keywords, name and description hold.

    Only a first guess: retrieval confirms or corrects it (see Retriever.namespaces_for)."""
    terms = set(tokenize(query))
    scores: dict[str, int] = {}
    for ns in registry:
        if ns.name == "general":
            continue
        vocabulary = term_set(
            " ".join(ns.keywords) + " " + ns.name.replace("_", " ") + " " + ns.description
        )
        hits = len(terms & vocabulary)
        if hits:
            scores[ns.name] = hits
    return scores
