"""The answer pipeline: route → retrieve → answer → check (LangGraph)."""
