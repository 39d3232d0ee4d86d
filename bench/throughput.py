"""Requests per second of GET /health and GET /api/v1/chats at a fixed concurrency (keep-alive connections)."""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.common import (
    Conn,
    MachineLoad,
    Stack,
    cpu_seconds,
    start_stack,
    stream_chat,
    summary_ms,
    table,
    write_result,
)


async def hammer(
    stack: Stack, path: str, headers: dict, concurrency: int, seconds: float, max_requests: int
) -> dict:
    """`concurrency` clients, each sending requests back to back until the time or count runs out."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    failures: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    budget = [max_requests]

    async def client() -> None:
        conn = Conn(stack.host, stack.port)
        try:
            while time.perf_counter() < deadline and budget[0] > 0:
                budget[0] -= 1
                started = time.perf_counter()
                try:
                    reply = await asyncio.wait_for(conn.request("GET", path, headers), 30)
                except (TimeoutError, OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
                    failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                    await conn.close()
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[reply.status] = statuses.get(reply.status, 0) + 1
        finally:
            await conn.close()

    cpu_before = cpu_seconds(stack.pid)
    with MachineLoad() as load:
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ok = statuses.get(200, 0)
    return {
        "path": path,
        "concurrency": concurrency,
        "seconds": round(wall, 2),
        "requests": len(latencies),
        "ok": ok,
        "statuses": {str(k): v for k, v in statuses.items()},
        "failures": failures,
        "rps": round(ok / wall, 1),
        "latency": summary_ms(latencies),
        "server_cpu_ms_per_request": round(
            (cpu_seconds(stack.pid) - cpu_before) * 1000 / max(1, len(latencies)), 2
        ),
        "machine": load.as_dict(),
    }


async def measure(
    stack: Stack, concurrency: int, seconds: float, max_requests: int, chats: int
) -> dict:
    conn = Conn(stack.host, stack.port)
    try:  # a history to list: the first page holds 20 real chats
        for i in range(chats):
            r = await stream_chat(
                stack.host,
                stack.port,
                stack.token,
                f"How does the envelope system work? ({i})",
                conn=conn,
            )
            if not r.ok:
                raise RuntimeError(f"seeding chat failed: {r.error}\n{stack.log_tail()}")
    finally:
        await conn.close()
    rows = []
    for path, headers in (("/health", {}), ("/api/v1/chats", stack.auth_headers())):
        await hammer(stack, path, headers, concurrency, min(1.0, seconds), max_requests)  # warm-up
        rows.append(await hammer(stack, path, headers, concurrency, seconds, max_requests))
    return {"endpoints": rows, "chats_in_history": chats}


def report(data: dict) -> str:
    head = f"throughput: concurrency {data['config']['concurrency']}, {data['config']['seconds']} s per endpoint"
    rows = [
        [
            r["path"],
            r["requests"],
            r["ok"],
            r["rps"],
            r["latency"]["p50"],
            r["latency"]["p99"],
            r["server_cpu_ms_per_request"],
            r["machine"]["cpu_busy_fraction"],
        ]
        for r in data["endpoints"]
    ]
    return (
        head
        + "\n"
        + table(
            [
                "endpoint",
                "requests",
                "200s",
                "req/s",
                "p50 ms",
                "p99 ms",
                "server CPU ms/req",
                "machine busy",
            ],
            rows,
        )
    )


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0, help="measuring time per endpoint")
    p.add_argument(
        "--max-requests", type=int, default=200_000, help="stop earlier after this many requests"
    )
    p.add_argument(
        "--chats", type=int, default=25, help="chats created first so the history list is real"
    )
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    with start_stack(tokens=20) as stack:
        data = asyncio.run(
            measure(stack, args.concurrency, args.seconds, args.max_requests, args.chats)
        )
    data["config"] = {
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "command": "python -m bench.throughput " + " ".join(argv or []),
    }
    print(report(data))
    if not args.no_write:
        print("wrote", write_result("throughput", data))
    return data


if __name__ == "__main__":
    main()
