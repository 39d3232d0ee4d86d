"""Concurrency: N streamed chats at once against one server, each answer taking ~1 s at the fake LLM."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import multiprocessing
import statistics
import time

from bench.common import (
    Conn,
    MachineLoad,
    RssSampler,
    Stack,
    cpu_seconds,
    hwm_mib,
    load_cases,
    rss_mib,
    start_stack,
    stream_chat,
    summary_ms,
    table,
    write_result,
)

DEFAULT_LEVELS = (50, 200, 500)


async def common_path_questions(stack: Stack, limit: int = 40) -> list[str]:
    """Questions answered with exactly one LLM call (keyword routing), found by asking each once quickly."""
    candidates = [
        c["question"]
        for c in load_cases()
        if not c.get("out_of_scope") and not c.get("follow_up_of")
    ]
    conn = Conn(stack.host, stack.port)
    picked: list[str] = []
    try:
        for question in candidates[: limit * 2]:
            r = await stream_chat(stack.host, stack.port, stack.token, question, conn=conn)
            if not r.ok:
                raise RuntimeError(f"probe turn failed: {r.error}\n{stack.log_tail()}")
            if r.metadata.get("llm_calls") == 1:
                picked.append(question)
            if len(picked) >= limit:
                break
    finally:
        await conn.close()
    if not picked:
        raise RuntimeError("no eval question took the one-LLM-call path")
    return picked


async def probe_health(
    stack: Stack, stop: asyncio.Event, every: float = 0.1, max_probes: int = 3000
) -> list[float]:
    """Latency of GET /health (no I/O in the view) while the streams run, seen from this client's
    event loop: it waits behind the client's own work for 200 streams too (kept for comparison;
    the figure of record is _probe_process's)."""
    latencies: list[float] = []
    conn = Conn(stack.host, stack.port)
    try:
        for _ in range(max_probes):
            if stop.is_set():
                break
            started = time.perf_counter()
            try:
                reply = await asyncio.wait_for(conn.request("GET", "/health"), 30)
                if reply.status == 200:
                    latencies.append(time.perf_counter() - started)
            except (TimeoutError, OSError, ConnectionError, asyncio.IncompleteReadError):
                await conn.close()
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                pass
    finally:
        await conn.close()
    return latencies


def _probe_process(host: str, port: int, ready, go, stop, out, every: float = 0.1) -> None:
    """GET /health every `every` s from a process of its own, between `go` and `stop`: how long
    the server's event loop keeps a request waiting. Why a process: in the client's event loop a
    probe sent with the burst waited for the client to open and write 200 streams first (up to
    80 ms of the client's own CPU, measured at the burst's first probe), and a thread would wait
    for the client's GIL."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/health")  # connected and warm before the burst
    conn.getresponse().read()
    ready.set()
    go.wait()
    latencies = []
    while not stop.is_set():
        started = time.perf_counter()
        try:
            conn.request("GET", "/health")
            reply = conn.getresponse()
            reply.read()
            if reply.status == 200:
                latencies.append(time.perf_counter() - started)
        except OSError:
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
        stop.wait(every)
    out.send(latencies)
    out.close()


class HealthProber:
    """_probe_process, started (and connected) before the burst."""

    def __init__(self, stack: Stack):
        ctx = multiprocessing.get_context("spawn")
        ready, self.go, self.stop = ctx.Event(), ctx.Event(), ctx.Event()
        self.results, child_end = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_probe_process,
            args=(stack.host, stack.port, ready, self.go, self.stop, child_end),
            daemon=True,
        )
        self.process.start()
        child_end.close()
        if not ready.wait(60):
            raise RuntimeError("the /health probe process did not start")

    def finish(self) -> list[float]:
        self.stop.set()
        latencies = self.results.recv() if self.results.poll(60) else []
        self.process.join(10)
        return latencies


async def one_level(stack: Stack, n: int, questions: list[str], timeout: float) -> dict:
    gate = asyncio.Event()
    done = asyncio.Event()

    async def one(i: int):
        await gate.wait()
        return await stream_chat(
            stack.host, stack.port, stack.token, questions[i % len(questions)], timeout=timeout
        )

    prober = HealthProber(stack)
    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await asyncio.sleep(0)  # let every task reach the gate so they start together
    cpu_before = cpu_seconds(stack.pid)
    with RssSampler(stack.pid) as rss, MachineLoad() as load:
        started = time.perf_counter()
        gate.set()
        prober.go.set()
        in_loop = asyncio.create_task(probe_health(stack, done))
        results = await asyncio.gather(*tasks)
        wall = time.perf_counter() - started
        done.set()
        health_in_loop = await in_loop
        health = prober.finish()
    cpu = cpu_seconds(stack.pid) - cpu_before
    ok = [r for r in results if r.ok]
    errors: dict[str, int] = {}
    for r in results:
        if not r.ok:
            key = (r.error or "not ok")[:120]
            errors[key] = errors.get(key, 0) + 1
    return {
        "concurrency": n,
        "wall_s": round(wall, 3),
        "ok": len(ok),
        "errors": n - len(ok),
        "error_kinds": errors,
        "total": summary_ms(r.total for r in ok),
        "ttft": summary_ms(r.ttft for r in ok if r.ttft is not None),
        "server_total": summary_ms(r.metadata["timings"]["total_ms"] / 1000 for r in ok),
        # SSE `token` events per stream: coalescing joins tokens, so fewer frames than tokens
        "token_frames_p50": statistics.median(r.events.get("token", 0) for r in ok) if ok else None,
        "server_cpu_s": round(cpu, 2),
        "server_cpu_ms_per_stream": round(cpu * 1000 / n, 1),
        "peak_rss_mib": round(rss.peak, 1),
        "rss_after_mib": round(rss_mib(stack.pid), 1),
        "hwm_mib": round(hwm_mib(stack.pid), 1),
        "health_during": summary_ms(health),
        "health_in_client_loop": summary_ms(health_in_loop),
        "machine": load.as_dict(),
    }


async def measure(
    stack: Stack, levels: list[int], tokens: int, answer_s: float, timeout: float
) -> dict:
    stack.fake_script(tokens=[f" tok{i}" for i in range(tokens)], delay=0.0)
    questions = await common_path_questions(stack)
    stack.fake_script(tokens=[f" tok{i}" for i in range(tokens)], delay=answer_s / tokens)
    rss_idle = rss_mib(stack.pid)
    rows = []
    for n in levels:
        rows.append(await one_level(stack, n, questions, timeout))
    return {"levels": rows, "rss_idle_mib": round(rss_idle, 1), "questions": len(questions)}


def report(data: dict) -> str:
    cfg = data["config"]
    head = (
        f"concurrency: streamed chats at once, fake answer {cfg['tokens']} tokens over {cfg['answer_s']} s, "
        f"{cfg['workers']} gunicorn worker(s); idle RSS {data['rss_idle_mib']} MiB"
    )
    rows = [
        [
            r["concurrency"],
            r["ok"],
            r["errors"],
            r["wall_s"],
            r["ttft"]["p50"],
            r["ttft"]["p99"],
            r["total"]["p50"],
            r["total"]["p99"],
            r["server_cpu_ms_per_stream"],
            r["health_during"]["p99"],
            r["health_during"]["max"],
            r["health_in_client_loop"]["p99"],
            r["peak_rss_mib"],
            r["machine"]["cpu_busy_fraction"],
        ]
        for r in data["levels"]
    ]
    out = (
        head
        + "\n"
        + table(
            [
                "streams",
                "ok",
                "errors",
                "wall s",
                "TTFT p50 ms",
                "TTFT p99 ms",
                "total p50 ms",
                "total p99 ms",
                "server CPU ms/stream",
                "/health p99 ms",
                "/health max ms",
                "/health p99 ms (client loop)",
                "peak RSS MiB",
                "machine busy",
            ],
            rows,
        )
    )
    out += "\nmachine: " + ", ".join(
        f"{r['concurrency']} streams: busy {r['machine']['cpu_busy_fraction']:.0%} "
        f"load {r['machine']['loadavg_1m_before']}, token frames per stream p50 "
        f"{r['token_frames_p50']}"
        for r in data["levels"]
    )
    for r in data["levels"]:
        for kind, count in r["error_kinds"].items():
            out += f"\n  {r['concurrency']} streams: {count} x {kind}"
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.concurrency", description=__doc__)
    p.add_argument(
        "--levels", default=",".join(map(str, DEFAULT_LEVELS)), help="comma-separated stream counts"
    )
    p.add_argument("--tokens", type=int, default=20, help="tokens per fake answer")
    p.add_argument("--answer-seconds", type=float, default=1.0, help="fake LLM time per answer")
    p.add_argument(
        "--workers", type=int, default=1, help="WEB_CONCURRENCY (embedded Qdrant allows only 1)"
    )
    p.add_argument(
        "--timeout", type=float, default=120.0, help="per-stream client timeout, seconds"
    )
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    with start_stack(tokens=args.tokens, workers=args.workers) as stack:
        data = asyncio.run(measure(stack, levels, args.tokens, args.answer_seconds, args.timeout))
    data["config"] = {
        "tokens": args.tokens,
        "answer_s": args.answer_seconds,
        "workers": args.workers,
        "levels": levels,
        "command": "python -m bench.concurrency " + " ".join(argv or []),
    }
    print(report(data))
    if not args.no_write:
        print("wrote", write_result("concurrency", data))
    return data


if __name__ == "__main__":
    main()
