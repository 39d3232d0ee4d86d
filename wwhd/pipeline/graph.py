"""build_graph() and run_turn(): the compiled pipeline and its event stream."""

from __future__ import annotations

from collections.abc import Iterator

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


def run_turn(graph, state: ChatState, context: PipelineContext) -> Iterator[tuple[str, object]]:
    """Yield ("citations", list) once, ("token", str) pieces, then ("final", state).

    The final state is LangGraph's own (the last "values" chunk): the reducers state.py declares
    (usage, llm_calls, timings) are applied by the graph, not re-done here.
    """
    final: dict = dict(state)
    cited = False
    for mode, chunk in graph.stream(state, context=context, stream_mode=["custom", "values"]):
        if mode == "values":
            final = chunk
            continue
        # The answer node sends the sources once it knows the reply answers the question.
        if "citations" in chunk:
            if not cited:
                cited = True
                yield "citations", chunk["citations"]
            continue
        if not cited:
            cited = True
            yield "citations", []
        yield "token", chunk["token"]
    final = {"usage": [], "llm_calls": 0, "timings": {}, **final}
    if not cited:
        yield "citations", final.get("citations", [])
    yield "final", final
