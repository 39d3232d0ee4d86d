"""Many turns, some abandoned mid-stream, leave no threads, connections or files behind."""

from __future__ import annotations

import os
import threading

from tests.tests_support import load_samples_and_login

QUESTION = "How do my wife and I stop fighting about money?"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def turn_threads() -> list[threading.Thread]:
    # A turn is two threads: the relay ("wwhd-turn") and the graph it reads ("wwhd-pipeline"),
    # which can outlive the relay by a moment after the turn is saved.
    return [t for t in threading.enumerate() if t.name in ("wwhd-turn", "wwhd-pipeline")]


def request_threads() -> set[threading.Thread]:
    """Threads other than the long-lived ones: the job runner (pool and re-check timer), the fake LLM."""
    return {
        t
        for t in threading.enumerate()
        if not isinstance(t, threading.Timer) and not t.name.startswith(("wwhd-job", "FakeOpenAI"))
    }


def fake_llm_connection_threads() -> list[threading.Thread]:
    # The fake OpenAI server (socketserver) serves each connection on its own thread, which ends
    # a moment after our side has read the whole answer: joined, not counted as ours.
    return [t for t in threading.enumerate() if t.name.endswith("(process_request_thread)")]


def settle() -> None:
    for thread in turn_threads():
        thread.join(timeout=30)
    assert not turn_threads(), "a turn's worker thread is still running"
    # A connection the app never closed would keep its fake-server thread alive past this join
    # and fail the thread check below; one that is merely closing ends within the timeout.
    for thread in fake_llm_connection_threads():
        thread.join(timeout=10)


def test_turns_do_not_leak(llm_app, fake_llm):
    client, headers = load_samples_and_login(llm_app)
    fake_llm.script(tokens=[f"t{i} " for i in range(12)])

    def full_turn():
        assert (
            client.post(
                "/api/v1/chat/stream", json={"content": QUESTION}, headers=headers
            ).status_code
            == 200
        )

    def abandoned_turn():
        response = client.post("/api/v1/chat/stream", json={"content": QUESTION}, headers=headers)
        chunks = response.iter_encoded()
        while b"event: token" not in next(chunks):
            pass
        response.close()

    for _ in range(5):
        full_turn()
        abandoned_turn()
    settle()
    fds, threads = open_fds(), request_threads()
    for n in range(40):
        full_turn() if n % 4 else abandoned_turn()
    settle()
    assert open_fds() - fds <= 3, "file descriptors (sockets, SQLite handles) leaked"
    assert request_threads() <= threads, "threads leaked"
    from wwhd.extensions import db

    with llm_app.app_context():
        pool = db.engine.pool
        assert pool.checkedout() == 0, "a database connection was never returned to the pool"
