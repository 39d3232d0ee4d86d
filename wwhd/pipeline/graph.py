"""build_graph() and run_turn(): the compiled pipeline and its event stream."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from langgraph.graph import END, START, StateGraph

from . import nodes
from .context import PipelineContext
from .state import ChatState


def _after_route(state: ChatState) -> str:
    return "check" if state.get("crisis") else "retrieve"


def build_graph():
    graph = StateGraph(ChatState, context_schema=PipelineContext)
    graph.add_node("route", nodes.route)
    graph.add_node("retrieve", nodes.retrieve)
    graph.add_node("answer", nodes.answer)
    graph.add_node("check", nodes.check)
    graph.add_edge(START, "route")
    graph.add_conditional_edges("route", _after_route, ["retrieve", "check"])
    graph.add_edge("retrieve", "answer")
    graph.add_edge("answer", "check")
    graph.add_edge("check", END)
    return graph.compile()


class _Events:
    """Turns what the nodes write into ("citations", list) once, then ("token", str) pieces: the
    sources come first, and a reply with none (a fixed one, the crisis reply) still sends []."""

    def __init__(self, put: Callable[[tuple[str, object]], None]):
        self.put = put
        self.cited = False

    def chunk(self, chunk: dict) -> None:
        # The answer node sends the sources once it knows the reply answers the question.
        if "citations" in chunk:
            if not self.cited:
                self.cited = True
                self.put(("citations", chunk["citations"]))
            return
        if not self.cited:
            self.cited = True
            self.put(("citations", []))
        self.put(("token", chunk["token"]))

    def end(self, final: dict) -> None:
        final = {"usage": [], "llm_calls": 0, "timings": {}, **final}
        if not self.cited:
            self.put(("citations", final.get("citations", [])))
        self.put(("final", final))


def run_turn(graph, state: ChatState, context: PipelineContext) -> Iterator[tuple[str, object]]:
    """Yield ("citations", list) once, ("token", str) pieces, then ("final", state).

    The final state is LangGraph's own (the last "values" chunk): the reducers state.py declares
    (usage, llm_calls, timings) are applied by the graph, not re-done here.
    """
    pending: list[tuple[str, object]] = []
    events = _Events(pending.append)
    final: dict = dict(state)
    for mode, chunk in graph.stream(state, context=context, stream_mode=["custom", "values"]):
        if mode == "values":
            final = chunk
            continue
        events.chunk(chunk)
        yield from pending
        pending.clear()
    events.end(final)
    yield from pending


def run_turn_into(
    graph, state: ChatState, context: PipelineContext, put: Callable[[tuple[str, object]], None]
) -> None:
    """run_turn's events, in the same order, handed to `put` as the nodes write them: no LangGraph
    custom event per token (the turn worker's path; run_turn stays for callers that iterate)."""
    events = _Events(put)
    final: dict = dict(state)
    # The last "values" chunk is what invoke() returns; invoke() also streams "updates" (to find
    # interrupts, which this graph has none of): twice the stream-queue puts, and under gevent
    # each put gives the loop away (its Semaphore's notify), ~0.1 ms per turn.
    for values in graph.stream(
        state, context=replace(context, sink=events.chunk), stream_mode="values"
    ):
        final = values
    events.end(final)
