"""The embedded default's dense model: packaged weights, no network, unit vectors, meaning."""

import socket
import subprocess
import sys
import textwrap

import numpy as np

from wwhd.providers.factory import make_embedder
from wwhd.providers.local_embed import DIMENSION, MODEL_NAME, LocalEmbedder, content_words


def test_loads_from_the_package_with_sockets_blocked():
    # A fresh interpreter, so nothing is cached: any connection attempt raises.
    code = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network blocked by test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from wwhd.providers.local_embed import LocalEmbedder
        v = LocalEmbedder().embed_array(["how do I save money"])
        print(v.shape)
        """
    )
    env = {"HF_HUB_OFFLINE": "0", "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == f"(1, {DIMENSION})"


def test_vectors_are_unit_length_and_carry_meaning():
    e = LocalEmbedder()
    v = e.embed_array(["saving money from my salary", "putting cash aside from a paycheck", "tea"])
    assert v.shape == (3, DIMENSION)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]
    vectors, usage = e.embed(["a"])
    assert len(vectors[0]) == DIMENSION and usage.model == MODEL_NAME


def test_empty_and_stop_word_only_texts_do_not_break():
    e = LocalEmbedder()
    assert e.embed_array([]).shape == (0, DIMENSION)
    assert content_words("the and of") == "the and of"  # nothing left: keep the text
    assert content_words("The kettle and the water") == "kettle water"
    assert e.embed_array([""]).shape == (1, DIMENSION)


def config(**overrides):
    base = {
        "PROVIDER": "offline",
        "MODEL_EMBED": "",
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
        "LLM_TIMEOUT_S": 5,
        "LLM_MAX_RETRIES": 0,
    }
    return base | overrides


def test_factory_local_by_default_off_on_request_remote_when_named():
    assert isinstance(make_embedder(config()), LocalEmbedder)
    assert isinstance(make_embedder(config(MODEL_EMBED="local")), LocalEmbedder)
    assert make_embedder(config(MODEL_EMBED="none")) is None
    remote = make_embedder(
        config(PROVIDER="openai", MODEL_EMBED="text-embedding-3-small", OPENAI_API_KEY="k")
    )
    assert remote.name == "text-embedding-3-small"
    # A remote name without a provider to serve it falls back to the local model.
    assert isinstance(make_embedder(config(MODEL_EMBED="text-embedding-3-small")), LocalEmbedder)


def test_no_socket_opened_while_embedding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the local embedder opened a socket")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    LocalEmbedder().embed_array(["still offline"])
