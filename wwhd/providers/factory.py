"""Pick providers from config: OpenAI-compatible when a key or base URL is set, else offline."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from .base import ChatModel, Embedder
from .local_embed import MODEL_NAME, LocalEmbedder
from .offline import OfflineChatModel

log = logging.getLogger(__name__)


def make_chat_model(config: Mapping) -> ChatModel:
    if config["PROVIDER"] == "openai":
        from .openai_compat import OpenAIChatModel

        return OpenAIChatModel(
            model=config["MODEL_CHAT"],
            api_key=config["OPENAI_API_KEY"],
            base_url=config["OPENAI_BASE_URL"] or None,
            timeout=config["LLM_TIMEOUT_S"],
            max_retries=config["LLM_MAX_RETRIES"],
            stream_mode=config.get("LLM_STREAM_MODE", "direct"),
        )
    return OfflineChatModel()


EMBED_OFF = frozenset({"none", "off", "bm25"})
EMBED_LOCAL = frozenset({"", "local", MODEL_NAME})


def make_embedder(config: Mapping) -> Embedder | None:
    """Dense vectors come from the packaged local model unless an OpenAI-compatible model is named
    (and a provider is configured to serve it); `MODEL_EMBED=none` turns dense off (BM25 only)."""
    name = (config["MODEL_EMBED"] or "").strip()
    if name.lower() in EMBED_OFF:
        return None
    if name.lower() in EMBED_LOCAL or config["PROVIDER"] != "openai":
        if name.lower() not in EMBED_LOCAL:
            log.warning(
                "MODEL_EMBED names a remote model but no OpenAI-compatible provider is set; "
                "using the local embedder",
                extra={"model": name},
            )
        return LocalEmbedder()
    from .openai_compat import OpenAIEmbedder

    return OpenAIEmbedder(
        model=name,
        api_key=config["OPENAI_API_KEY"],
        base_url=config["OPENAI_BASE_URL"] or None,
        timeout=config["LLM_TIMEOUT_S"],
        max_retries=config["LLM_MAX_RETRIES"],
    )
