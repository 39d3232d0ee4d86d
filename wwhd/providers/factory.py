"""Pick providers from config: OpenAI-compatible when a key or base URL is set, else offline."""

from __future__ import annotations

from collections.abc import Mapping

from .base import ChatModel, Embedder


def make_chat_model(config: Mapping) -> ChatModel:
    if config["PROVIDER"] == "openai":
        from .openai_compat import OpenAIChatModel

        return OpenAIChatModel(
            model=config["MODEL_CHAT"],
            api_key=config["OPENAI_API_KEY"],
            base_url=config["OPENAI_BASE_URL"] or None,
            timeout=config["LLM_TIMEOUT_S"],
            max_retries=config["LLM_MAX_RETRIES"],
        )
    from .offline import OfflineChatModel

    return OfflineChatModel()


def make_embedder(config: Mapping) -> Embedder | None:
    """Dense embeddings only when a model is named and a provider can serve it; sparse BM25 works alone."""
    if config["PROVIDER"] != "openai" or not config["MODEL_EMBED"]:
        return None
    from .openai_compat import OpenAIEmbedder

    return OpenAIEmbedder(
        model=config["MODEL_EMBED"],
        api_key=config["OPENAI_API_KEY"],
        base_url=config["OPENAI_BASE_URL"] or None,
        timeout=config["LLM_TIMEOUT_S"],
        max_retries=config["LLM_MAX_RETRIES"],
    )
