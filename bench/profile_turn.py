"""Server CPU per streamed turn (from /proc) and where it goes, by area, under the real gunicorn worker.

Sequential streamed turns on one gevent worker against the fake LLM (no delay by default). Each run
reads the worker tree's CPU from /proc before and after; `--repeat` runs give a median. The server
runs `bench.profiled_wsgi:app` (the same app behind a CPU-weighted stack sampler, idle unless
asked, and a meter of the worker's CPU from a stream's arrival to its first token frame). With
`--profile` one more run prints the breakdown by area in ms of main-thread CPU per turn.

Two first-token numbers: the overhead p50 is wall-clock (client TTFT minus the fake's own TTFT),
and includes whatever else the machine runs; the CPU before the first token is the server's own
work (from /proc-steady thread CPU clocks), the figure to compare across a busy machine's runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections import defaultdict

from bench.common import (
    Conn,
    MachineLoad,
    Stack,
    cpu_seconds,
    http_json,
    start_stack,
    stream_chat,
    table,
    write_result,
)
from bench.concurrency import common_path_questions
from bench.overhead import baseline

# Which area a sampled stack belongs to. The innermost frame of our own code (`wwhd/…`) decides;
# where our frame only dispatches (the graph runner, the nodes, the relay), the library below it does.
OWN_AREAS = (
    ("wwhd/accounts.py", "auth and limits"),
    ("wwhd/limits.py", "auth and limits"),
    ("wwhd/api/guard.py", "auth and limits"),
    ("wwhd/conversations.py", "DB writes (turn rows)"),
    ("wwhd/usage.py", "DB writes (turn rows)"),
    ("wwhd/metrics.py", "DB writes (turn rows)"),
    ("wwhd/pipeline/nodes.py:retrieve", "retrieval"),
    ("wwhd/providers/local_embed.py", "retrieval"),  # the query's local embedding
    ("wwhd/retrieval/", "retrieval"),
    ("wwhd/knowledge/", "retrieval"),
    ("wwhd/providers/", "langchain-openai + openai SDK per chunk"),
    ("wwhd/sse.py", "SSE framing + socket writes"),
    ("wwhd/logs.py", "request handling (Flask, schema, logs)"),
)
LIB_AREAS = (
    ("/langgraph/", "LangGraph"),
    ("/langchain_core/", "LangGraph"),  # callbacks and config under the graph (not under the LLM)
    ("/sqlalchemy/", "DB writes (turn rows)"),
    ("/queue.py", "queue hand-off (turn worker → relay)"),
    ("/gevent/queue", "queue hand-off (turn worker → relay)"),
    ("/gevent/thread", "queue hand-off (turn worker → relay)"),
    ("/threading.py", "queue hand-off (turn worker → relay)"),
    ("/qdrant_client/", "retrieval"),
    ("/flask_jwt_extended/", "auth and limits"),
    ("/jwt/", "auth and limits"),
    ("/flask_limiter/", "auth and limits"),
    ("/limits/", "auth and limits"),
)
DISPATCH = ("wwhd/pipeline/", "wwhd/turns.py", "wwhd/api/chat.py")
HANDOFF = "queue hand-off (turn worker → relay)"


def classify(stack: str) -> str:
    frames = stack.split(";")
    for depth in range(len(frames) - 1, -1, -1):
        name = frames[depth]
        for marker, area in OWN_AREAS:
            if marker in name:
                return area
        if "/wwhd/" in name and any(d in name for d in DISPATCH):
            below = frames[depth + 1 :]
            for lib, area in LIB_AREAS:
                if any(lib in f for f in below):
                    return area
            if "wwhd/turns.py" in name:
                return HANDOFF
            if "wwhd/api/chat.py:generate" in name:
                return "SSE framing + socket writes"
            if "wwhd/pipeline/" in name:
                return "pipeline nodes (own code)"
            break
        if "/wwhd/" in name:
            break
    if any("/wwhd/" in f for f in frames):
        return "request handling (Flask, schema, logs)"
    # LangGraph runs each node in an executor thread of its own: those stacks start outside wwhd/.
    if any("/langgraph/" in f for f in frames):
        return "LangGraph"
    if any("gunicorn/http/wsgi.py" in f or "gunicorn/workers/" in f for f in frames):
        if any(":write" in f or "sendall" in f or ":close" in f for f in frames):
            return "SSE framing + socket writes"
        return "HTTP parsing + WSGI (gunicorn)"
    if any("/gevent/" in f for f in frames):
        return "gevent hub (I/O dispatch, switches)"
    return "other"


def breakdown(profile: dict, turns: int) -> list[tuple[str, float]]:
    areas: dict[str, float] = defaultdict(float)
    for stack, cpu in profile["stacks"].items():
        areas[classify(stack)] += cpu
    return sorted(((a, round(s * 1000 / turns, 2)) for a, s in areas.items()), key=lambda x: -x[1])


def top_leaves(profile: dict, turns: int, n: int = 25) -> list[tuple[str, str, float]]:
    """The innermost frames that used most CPU (self time), with their area."""
    leaves: dict[tuple[str, str], float] = defaultdict(float)
    for stack, cpu in profile["stacks"].items():
        leaf = stack.rsplit(";", 1)[-1]
        leaves[(leaf.split("site-packages/")[-1].split("/wt/")[-1], classify(stack))] += cpu
    ranked = sorted(leaves.items(), key=lambda kv: -kv[1])[:n]
    return [(leaf, area, round(cpu * 1000 / turns, 3)) for (leaf, area), cpu in ranked]


async def run_turns(stack: Stack, questions: list[str], turns: int) -> dict:
    conn = Conn(stack.host, stack.port)
    results = []
    before = cpu_seconds(stack.pid)
    try:
        with MachineLoad() as load:
            for i in range(turns):
                results.append(
                    await stream_chat(
                        stack.host,
                        stack.port,
                        stack.token,
                        questions[i % len(questions)],
                        conn=conn,
                    )
                )
    finally:
        await conn.close()
    cpu = cpu_seconds(stack.pid) - before
    first_token_cpu = http_json("POST", stack.base + "/_bench/first_token", {})["cpu_s"]
    ok = [r for r in results if r.ok]
    if len(ok) != turns:
        raise RuntimeError(
            f"{turns - len(ok)} turns failed: {[r.error for r in results if not r.ok][:3]}"
        )
    return {
        "cpu_ms_per_turn": round(cpu * 1000 / turns, 2),
        "ttfts": [r.ttft for r in ok if r.ttft is not None],
        "first_token_cpu_ms_p50": round(statistics.median(first_token_cpu) * 1000, 2)
        if first_token_cpu
        else None,
        "machine": load.as_dict(),
    }


async def measure(stack: Stack, tokens: int, turns: int, repeat: int, profile: bool) -> dict:
    questions = await common_path_questions(stack)  # also the warm-up: builds deps, warms caches
    http_json("POST", stack.base + "/_bench/first_token", {})  # forget the warm-up's
    runs = [await run_turns(stack, questions, turns) for _ in range(repeat)]
    base_ttft, _ = await baseline(stack, 30, 8000)
    b_ttft = statistics.median(base_ttft)
    overhead_p50 = [round((statistics.median(r["ttfts"]) - b_ttft) * 1000, 2) for r in runs]
    out = {
        "tokens": tokens,
        "turns": turns,
        "cpu_ms_per_turn_runs": [r["cpu_ms_per_turn"] for r in runs],
        "cpu_ms_per_turn": statistics.median(r["cpu_ms_per_turn"] for r in runs),
        "first_token_overhead_p50_ms_runs": overhead_p50,
        "first_token_overhead_p50_ms": statistics.median(overhead_p50),
        "fake_ttft_p50_ms": round(b_ttft * 1000, 2),
        "cpu_before_first_token_p50_ms_runs": [r["first_token_cpu_ms_p50"] for r in runs],
        "cpu_before_first_token_p50_ms": statistics.median(
            r["first_token_cpu_ms_p50"] for r in runs
        ),
        "machine": [r["machine"] for r in runs],
    }
    if profile:
        http_json("POST", stack.base + "/_bench/profile/start", {})
        prof_run = await run_turns(stack, questions, turns)
        prof = http_json("POST", stack.base + "/_bench/profile/stop", {})
        out["profile"] = {
            "samples": prof["samples"],
            "main_thread_cpu_ms_per_turn": round(prof["main_cpu_s"] * 1000 / turns, 2),
            "process_cpu_ms_per_turn_while_sampling": prof_run["cpu_ms_per_turn"],
            "areas": breakdown(prof, turns),
            "top_leaves": top_leaves(prof, turns),
            "stacks": prof["stacks"],  # raw, to classify again offline
        }
    return out


def report(data: dict) -> str:
    head = (
        f"profile_turn: {data['turns']} sequential streamed turns x {len(data['cpu_ms_per_turn_runs'])} runs, "
        f"fake answer {data['tokens']} tokens, no delay, 1 gevent worker\n"
        f"server CPU per turn: {data['cpu_ms_per_turn']} ms median (runs {data['cpu_ms_per_turn_runs']})\n"
        f"first-token overhead p50: {data['first_token_overhead_p50_ms']} ms median "
        f"(runs {data['first_token_overhead_p50_ms_runs']}; fake alone {data['fake_ttft_p50_ms']} ms)\n"
        f"server CPU before the first token p50: {data['cpu_before_first_token_p50_ms']} ms median "
        f"(runs {data['cpu_before_first_token_p50_ms_runs']})\n"
        "machine: "
        + ", ".join(
            f"busy {m['cpu_busy_fraction']:.0%} load {m['loadavg_1m_before']}"
            for m in data["machine"]
        )
    )
    prof = data.get("profile")
    if not prof:
        return head
    total = sum(ms for _, ms in prof["areas"])
    rows = [[a, ms, f"{ms / total:.0%}" if total else "-"] for a, ms in prof["areas"]]
    out = (
        head
        + f"\n\nbreakdown (sampled main-thread CPU {prof['main_thread_cpu_ms_per_turn']} ms/turn, "
        f"process {prof['process_cpu_ms_per_turn_while_sampling']} ms/turn while sampling, "
        f"{prof['samples']} samples)\n" + table(["area", "ms/turn", "share"], rows)
    )
    out += "\n\ntop innermost frames\n" + table(
        ["frame", "area", "ms/turn"], [list(r) for r in prof["top_leaves"]]
    )
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.profile_turn", description=__doc__)
    p.add_argument("--tokens", type=int, default=300, help="tokens per fake answer")
    p.add_argument("--turns", type=int, default=30, help="turns per run")
    p.add_argument("--repeat", type=int, default=3, help="runs; the median is reported")
    p.add_argument("--profile", action="store_true", help="one more run under the stack sampler")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    with start_stack(tokens=args.tokens, app="bench.profiled_wsgi:app") as stack:
        data = asyncio.run(measure(stack, args.tokens, args.turns, args.repeat, args.profile))
    data["command"] = "python -m bench.profile_turn " + " ".join(argv or [])
    print(report(data))
    if not args.no_write:
        print("wrote", write_result(f"profile_turn_{args.tokens}", data))
    return data


if __name__ == "__main__":
    main()
