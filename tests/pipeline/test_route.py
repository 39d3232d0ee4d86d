"""route(): keywords first, the LLM only when they pick nothing, and route_method says which decided."""

from __future__ import annotations

from collections.abc import Iterator

from langgraph.runtime import Runtime

from wwhd.knowledge.namespaces import NamespaceInfo
from wwhd.pipeline import nodes
from wwhd.pipeline.context import PipelineContext
from wwhd.providers.base import AnswerRequest, ChatModel, Usage
from wwhd.retrieval.query import keyword_scores

REGISTRY = (
    NamespaceInfo("general", "Anything else", ()),
    NamespaceInfo("money", "Saving, budgets and debt", ("money", "budget", "savings", "debt")),
    NamespaceInfo(
        "meditation", "Sitting practice and breathing", ("meditation", "breathing", "mindfulness")
    ),
)
AMBIGUOUS = "Where did the purple giraffe go on Tuesday?"


class ScriptedRouter:
    """A provider whose router reply is fixed; it records every complete() call."""

    name = "scripted"
    offline = False

    def __init__(self, reply: str) -> None:
        self.reply, self.calls = reply, []

    def stream_answer(self, request: AnswerRequest) -> Iterator[str | Usage]:
        raise AssertionError("route() must not stream an answer")

    def complete(self, messages: list[dict]) -> tuple[str, Usage]:
        self.calls.append(messages)
        return self.reply, Usage(model=self.name, prompt_tokens=40, completion_tokens=1)


def route(question: str, model: ChatModel, **context) -> dict:
    # route() never touches the index; the rest of the context is real.
    ctx = PipelineContext(chat_model=model, index=None, registry=REGISTRY, **context)
    runtime = Runtime(context=ctx, stream_writer=lambda chunk: None)
    return nodes.route({"question": question, "history": []}, runtime)


def test_ambiguous_question_asks_the_llm_and_says_so_when_it_names_nothing():
    model = ScriptedRouter("none")
    assert keyword_scores(AMBIGUOUS, REGISTRY) == {}  # keywords cannot decide this one
    out = route(AMBIGUOUS, model)
    assert len(model.calls) == 1
    assert out["route_method"] == "llm" and out["llm_calls"] == 1
    assert (
        out["namespaces"] == [] and out["route_confidence"] == 0.0
    )  # retrieval searches everything
    assert out["usage"] == [
        Usage(model="scripted", prompt_tokens=40, completion_tokens=1).to_dict()
    ]


def test_llm_reply_naming_a_namespace_routes_there():
    out = route(AMBIGUOUS, ScriptedRouter("meditation"))
    assert out["route_method"] == "llm" and out["llm_calls"] == 1
    assert out["namespaces"] == ["meditation", "general"] and out["route_confidence"] == 0.6


def test_keywords_decide_without_an_llm_call():
    model = ScriptedRouter("meditation")
    out = route("How do I stick to a budget and pay off my debt?", model)
    assert model.calls == [] and out["llm_calls"] == 0
    assert out["route_method"] == "keywords" and out["namespaces"][0] == "money"


def test_without_llm_routing_retrieval_decides():
    model = ScriptedRouter("meditation")
    out = route(AMBIGUOUS, model, llm_routing=False)
    assert model.calls == [] and out["llm_calls"] == 0
    assert out["route_method"] == "retrieval" and out["namespaces"] == []
