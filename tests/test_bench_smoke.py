"""The bench harness still works: the smallest overhead run against a real gunicorn server."""

from __future__ import annotations

import time

import pytest

from bench import overhead
from bench.common import SseParser, StreamResult, percentile, start_stack

FAST_HASHING = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "8192"}


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([5.0], 99) == 5.0


def test_sse_parser_times_events_split_across_reads():
    result = StreamResult()
    parser = SseParser(time.perf_counter(), result)
    parser.feed(
        b'id: 1\nevent: start\ndata: {"type":"start","chat_id":"c1","message_id":"m1"}\n\nid: 2\nevent: tok'
    )
    parser.feed(b'en\ndata: {"type":"token","content":"Hi"}\n\n: ping\n\n')
    parser.feed(b'id: 3\nevent: done\ndata: {"type":"done"}\n\n')
    result.status = 200
    assert result.chat_id == "c1" and result.message_id == "m1"
    assert result.events == {"start": 1, "token": 1, "ping": 1, "done": 1}
    assert result.ttft is not None and result.total is not None and result.ttft <= result.total
    assert result.ok


@pytest.mark.slow  # starts gunicorn and 3 flask commands: 15-30 s
def test_overhead_bench_runs_against_a_real_server():
    with start_stack(tokens=5, extra_env=FAST_HASHING) as stack:
        data = overhead.run(stack, turns=3, warmup=1)
    assert data["ok"] == 3, data["errors"]
    assert data["errors"] == []
    assert data["llm_calls"] and all(calls in (0, 1, 2) for calls in data["llm_calls"])
    assert data["client_total"]["n"] == 3 and data["baseline_total"]["n"] >= 3
    assert data["client_ttft"]["p50"] <= data["client_total"]["p50"]
    data["config"] = {"tokens": 5, "delay": 0.0, "turns": 3}
    assert "overhead: total" in overhead.report(data)
    # The harness stops what it started and leaves no temp dir behind.
    assert stack.server.returncode is not None and stack.fake.returncode is not None
    assert not stack.tmp.exists()
