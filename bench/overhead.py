"""Overhead per streamed turn: WWHD's time-to-first-token and total minus the fake LLM's own, sequential."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlparse

from bench.common import (
    Conn,
    MachineLoad,
    Stack,
    cpu_seconds,
    load_cases,
    start_stack,
    stream_chat,
    summary_ms,
    table,
    write_result,
)


def questions() -> list[str]:
    """In-scope, stand-alone questions from the eval set: the common path (retrieval + one LLM call)."""
    return [
        c["question"]
        for c in load_cases()
        if not c.get("out_of_scope") and not c.get("follow_up_of")
    ]


async def baseline(stack: Stack, n: int, prompt_chars: int) -> tuple[list[float], list[float]]:
    """The fake LLM on its own: the same streamed completion requested directly, `n` times in a row."""
    url = urlparse(stack.fake_url)
    conn = Conn(url.hostname, url.port)
    body = json.dumps(
        {
            "model": "gpt-4o-mini",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [
                {"role": "system", "content": "x " * (prompt_chars // 2)},
                {"role": "user", "content": "How does the envelope system work?"},
            ],
        }
    ).encode()
    ttfts, totals = [], []
    try:
        for _ in range(n):
            started = time.perf_counter()
            first: list[float] = []

            def feed(data: bytes, first=first, started=started) -> None:
                if not first and b'"content":"' in data and b'"content":""' not in data:
                    first.append(time.perf_counter() - started)

            reply = await asyncio.wait_for(
                conn.request(
                    "POST",
                    url.path + "/chat/completions",
                    {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"},
                    body,
                    on_data=feed,
                ),
                30,
            )
            if reply.status != 200:
                raise RuntimeError(f"fake LLM answered {reply.status}")
            totals.append(time.perf_counter() - started)
            ttfts.append(first[0] if first else totals[-1])
    finally:
        await conn.close()
    return ttfts, totals


async def measure(stack: Stack, turns: int, warmup: int) -> dict:
    qs = questions()
    conn = Conn(stack.host, stack.port)
    for i in range(warmup):  # builds the lazy deps (Qdrant, LLM client) and warms caches
        r = await stream_chat(stack.host, stack.port, stack.token, qs[i % len(qs)], conn=conn)
        if not r.ok:
            raise RuntimeError(f"warm-up turn failed: {r.error}\n{stack.log_tail()}")
    results = []
    cpu_before = cpu_seconds(stack.pid)
    try:
        with MachineLoad() as load:
            for i in range(turns):
                results.append(
                    await stream_chat(
                        stack.host, stack.port, stack.token, qs[i % len(qs)], conn=conn
                    )
                )
    finally:
        await conn.close()
    cpu_per_turn_ms = (cpu_seconds(stack.pid) - cpu_before) * 1000 / max(1, turns)
    ok = [r for r in results if r.ok]
    prompt_chars = (
        4 * int(sorted(r.metadata["usage"]["prompt_tokens"] for r in ok)[len(ok) // 2])
        if ok
        else 8000
    )
    base_ttft, base_total = await baseline(stack, max(20, min(turns, 100)), prompt_chars)
    b_ttft = sorted(base_ttft)[len(base_ttft) // 2]
    b_total = sorted(base_total)[len(base_total) // 2]
    # Each LLM call the turn made costs one baseline call; a router call precedes the first token.
    over_total = [r.total - r.metadata.get("llm_calls", 1) * b_total for r in ok]
    over_ttft = [
        r.ttft - b_ttft - max(0, r.metadata.get("llm_calls", 1) - 1) * b_total for r in ok if r.ttft
    ]
    server = {
        key: summary_ms(
            [
                r.metadata["timings"][key] / 1000
                for r in ok
                if r.metadata["timings"].get(key) is not None
            ]
        )
        for key in ("route_ms", "retrieve_ms", "first_token_ms", "total_ms")
    }
    return {
        "turns": turns,
        "ok": len(ok),
        "errors": [r.error for r in results if not r.ok][:10],
        "llm_calls": sorted({r.metadata.get("llm_calls") for r in ok}),
        "client_ttft": summary_ms(r.ttft for r in ok if r.ttft),
        "client_total": summary_ms(r.total for r in ok),
        "baseline_ttft": summary_ms(base_ttft),
        "baseline_total": summary_ms(base_total),
        "overhead_ttft": summary_ms(over_ttft),
        "overhead_total": summary_ms(over_total),
        "server_timings": server,
        # Auth, limits, saving the question, the worker hand-off, saving the answer: all outside the graph.
        "outside_graph": summary_ms(r.total - r.metadata["timings"]["total_ms"] / 1000 for r in ok),
        "server_cpu_ms_per_turn": round(cpu_per_turn_ms, 2),
        "machine": load.as_dict(),
    }


def report(data: dict) -> str:
    rows = []
    for label, key in (
        ("WWHD time to first token", "client_ttft"),
        ("WWHD total", "client_total"),
        ("fake LLM alone: first token", "baseline_ttft"),
        ("fake LLM alone: total", "baseline_total"),
        ("overhead: first token", "overhead_ttft"),
        ("overhead: total", "overhead_total"),
    ):
        s = data[key]
        rows.append([label, s["n"], s["p50"], s["p95"], s["p99"], s["max"]])
    for key, s in data["server_timings"].items():
        rows.append([f"server timing {key}", s["n"], s["p50"], s["p95"], s["p99"], s["max"]])
    s = data["outside_graph"]
    rows.append(["client total - server total_ms", s["n"], s["p50"], s["p95"], s["p99"], s["max"]])
    head = (
        f"overhead: {data['turns']} sequential streamed turns, {data['ok']} ok, fake LLM "
        f"{data['config']['tokens']} tokens x {data['config']['delay']} s, LLM calls per turn {data['llm_calls']}"
    )
    foot = (
        f"server CPU per turn {data['server_cpu_ms_per_turn']} ms; machine CPU busy "
        f"{data['machine']['cpu_busy_fraction']:.0%} (load {data['machine']['loadavg_1m_before']})"
    )
    return head + "\n" + table(["ms", "n", "p50", "p95", "p99", "max"], rows) + "\n" + foot


def run(stack: Stack, turns: int = 100, warmup: int = 5) -> dict:
    data = asyncio.run(measure(stack, turns, warmup))
    return data


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__)
    p.add_argument("--turns", type=int, default=200)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--tokens", type=int, default=20, help="tokens per fake answer")
    p.add_argument("--delay", type=float, default=0.0, help="fake LLM seconds per token")
    p.add_argument(
        "--no-write", action="store_true", help="print only; no JSON under bench/results"
    )
    args = p.parse_args(argv)
    with start_stack(tokens=args.tokens, delay=args.delay) as stack:
        data = run(stack, args.turns, args.warmup)
    data["config"] = {
        "tokens": args.tokens,
        "delay": args.delay,
        "turns": args.turns,
        "command": "python -m bench.overhead " + " ".join(argv or []),
    }
    print(report(data))
    if not args.no_write:
        print("wrote", write_result("overhead", data))
    return data


if __name__ == "__main__":
    main()
