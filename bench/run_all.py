"""Run every benchmark in turn, print their tables, write bench/results/*.json and a summary against the targets."""

from __future__ import annotations

import argparse
import time
import traceback

from bench import concurrency, llm_calls, overhead, retrieval, throughput
from bench.common import write_result

# (name, module, full arguments, --quick arguments); quick runs print but keep the full runs' JSON.
BENCHES = (
    ("overhead", overhead, [], ["--turns", "30", "--no-write"]),
    ("concurrency", concurrency, [], ["--levels", "20,50", "--no-write"]),
    ("throughput", throughput, [], ["--seconds", "3", "--no-write"]),
    ("llm_calls", llm_calls, [], ["--limit", "20", "--no-write"]),
    (
        "retrieval",
        retrieval,
        [],
        ["--sizes", "1000", "--rounds", "1", "--budget", "20", "--no-write"],
    ),
)


def check_targets(results: dict) -> list[dict]:
    """The issue's targets, each with the measured value and whether it was met."""
    checks = []
    if "overhead" in results:
        o = results["overhead"]["overhead_total"]
        checks += [
            {
                "target": "overhead per streamed turn p50 <= 15 ms",
                "measured": o["p50"],
                "met": o["p50"] is not None and o["p50"] <= 15,
            },
            {
                "target": "overhead per streamed turn p99 <= 60 ms",
                "measured": o["p99"],
                "met": o["p99"] is not None and o["p99"] <= 60,
            },
        ]
    if "concurrency" in results:
        levels = {r["concurrency"]: r for r in results["concurrency"]["levels"]}
        top = levels.get(500) or levels[max(levels)]
        n = top["concurrency"]
        checks += [
            {
                "target": f"{n} concurrent 1 s streams: zero errors",
                "measured": top["errors"],
                "met": top["errors"] == 0,
            },
            {
                "target": f"{n} concurrent 1 s streams: wall time <= 3 s",
                "measured": top["wall_s"],
                "met": top["wall_s"] <= 3,
            },
            {
                "target": f"{n} concurrent 1 s streams: server RSS <= 1 GB",
                "measured": top["peak_rss_mib"],
                "met": top["peak_rss_mib"] <= 1024,
            },
        ]
    if "llm_calls" in results:
        t = results["llm_calls"]["target"]
        checks.append(
            {
                "target": "<= 1 LLM call per answer (common path), <= 2 when the router asks the LLM",
                "measured": f"{t['common_path_max_calls']} / {t['router_llm_max_calls']}",
                "met": t["met"],
            }
        )
    if "retrieval" in results:
        sizes = {r["chunks"]: r for r in results["retrieval"]["sizes"]}
        if 10_000 in sizes:
            p50 = sizes[10_000]["filtered"]["p50"]
            checks.append(
                {
                    "target": "retrieval p50 <= 30 ms at 10k chunks (embedded Qdrant)",
                    "measured": p50,
                    "met": p50 is not None and p50 <= 30,
                }
            )
    return checks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__)
    p.add_argument(
        "--quick",
        action="store_true",
        help="small configurations (a few minutes, not for BENCHMARKS.md)",
    )
    p.add_argument(
        "--only", default="", help="comma-separated subset: " + ",".join(b[0] for b in BENCHES)
    )
    args = p.parse_args(argv)
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    results, failures, seconds = {}, {}, {}
    for name, module, full, quick in BENCHES:
        if wanted and name not in wanted:
            continue
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        try:
            results[name] = module.main(quick if args.quick else full)
        except Exception as exc:  # one broken bench must not hide the others' numbers
            traceback.print_exc()
            failures[name] = f"{type(exc).__name__}: {exc}"[:2000]
        seconds[name] = round(time.monotonic() - started, 1)
    checks = check_targets(results)
    print("\n=== targets ===")
    for c in checks:
        print(f"  [{'met' if c['met'] else 'MISSED'}] {c['target']}: measured {c['measured']}")
    for name, error in failures.items():
        print(f"  [FAILED] {name}: {error.splitlines()[0]}")
    print(
        "wrote",
        write_result(
            "summary_quick" if args.quick else "summary",
            {"quick": args.quick, "targets": checks, "failures": failures, "seconds": seconds},
        ),
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
