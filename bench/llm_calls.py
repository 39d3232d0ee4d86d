"""LLM calls and tokens per answer, counted by the fake LLM server, for the eval questions."""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections import Counter

from bench.common import Conn, Stack, load_cases, start_stack, stream_chat, table, write_result
from wwhd.usage import cost_usd

PRICED_MODEL = "gpt-4o-mini"


async def measure(stack: Stack, limit: int | None) -> dict:
    cases = load_cases()
    by_id = {c["id"]: c for c in cases}
    conn = Conn(stack.host, stack.port)
    rows = []
    try:
        for case in cases[:limit]:
            chat_id = None
            parent = by_id.get(case.get("follow_up_of") or "")
            if parent:  # the follow-up is asked in the chat that holds its parent question
                first = await stream_chat(
                    stack.host, stack.port, stack.token, parent["question"], conn=conn
                )
                if not first.ok:
                    raise RuntimeError(f"{parent['id']}: {first.error}")
                chat_id = first.chat_id
            stack.fake_reset()
            r = await stream_chat(
                stack.host, stack.port, stack.token, case["question"], chat_id=chat_id, conn=conn
            )
            if not r.ok:
                raise RuntimeError(f"{case['id']}: {r.error}\n{stack.log_tail()}")
            counted = stack.fake_counters()
            meta = stack.message_meta(r.message_id) if r.message_id else {}
            rows.append(
                {
                    "id": case["id"],
                    "kind": case.get("kind", "?"),
                    "out_of_scope": case.get("out_of_scope"),
                    "route_method": meta.get("route_method"),
                    "llm_calls": counted["chat_calls"],
                    "reported_llm_calls": r.metadata.get("llm_calls"),
                    "embedding_calls": counted["embedding_calls"],
                    "prompt_tokens": counted["prompt_tokens"],
                    "completion_tokens": counted["completion_tokens"],
                    "embedding_tokens": counted["embedding_tokens"],
                    "reported_usage": r.metadata.get("usage", {}).get("total_tokens"),
                }
            )
    finally:
        await conn.close()
    return {"answers": rows}


# route() records "llm" whenever it asked the LLM, whether or not the reply named a namespace.
ROUTER_ASKED = frozenset({"llm"})


def target_check(rows: list[dict]) -> dict:
    """At most one LLM call when the router did not ask the LLM, at most two when it did."""
    common = [r for r in rows if r["route_method"] not in ROUTER_ASKED]
    asked = [r for r in rows if r["route_method"] in ROUTER_ASKED]
    return {
        "common_path_max_calls": max((r["llm_calls"] for r in common), default=0),
        "router_llm_max_calls": max((r["llm_calls"] for r in asked), default=0),
        "common_path_answers": len(common),
        "router_llm_answers": len(asked),
        "met": all(r["llm_calls"] <= 1 for r in common) and all(r["llm_calls"] <= 2 for r in asked),
    }


def summarise(rows: list[dict]) -> list[dict]:
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault("out_of_scope" if row["out_of_scope"] else row["kind"], []).append(row)
    for row in rows:  # the target is stated per routing path
        groups.setdefault(f"routed by {row['route_method'] or '?'}", []).append(row)
    groups["all"] = rows
    out = []
    for name, items in groups.items():
        calls = Counter(r["llm_calls"] for r in items)
        prompt = statistics.fmean(r["prompt_tokens"] for r in items)
        completion = statistics.fmean(r["completion_tokens"] for r in items)
        out.append(
            {
                "group": name,
                "answers": len(items),
                "calls_mean": round(statistics.fmean(r["llm_calls"] for r in items), 2),
                "calls_max": max(r["llm_calls"] for r in items),
                "calls_histogram": {str(k): calls[k] for k in sorted(calls)},
                "embedding_calls_mean": round(
                    statistics.fmean(r["embedding_calls"] for r in items), 2
                ),
                "prompt_tokens_mean": round(prompt),
                "completion_tokens_mean": round(completion),
                "cost_usd_per_answer": round(
                    cost_usd(PRICED_MODEL, round(prompt), round(completion)), 6
                ),
                "server_count_mismatches": sum(
                    r["llm_calls"] != r["reported_llm_calls"] for r in items
                ),
            }
        )
    return out


def report(data: dict) -> str:
    head = (
        f"LLM calls per answer ({len(data['answers'])} eval questions; fake answer {data['config']['tokens']} "
        f"tokens; cost at {PRICED_MODEL} prices)"
    )
    rows = [
        [
            s["group"],
            s["answers"],
            s["calls_mean"],
            s["calls_max"],
            " ".join(f"{k}:{v}" for k, v in s["calls_histogram"].items()),
            s["prompt_tokens_mean"],
            s["completion_tokens_mean"],
            f"{s['cost_usd_per_answer']:.6f}",
            s["server_count_mismatches"],
        ]
        for s in data["summary"]
    ]
    t = data["target"]
    foot = (
        f"target (<=1 call unless the router asks the LLM, then <=2): {'met' if t['met'] else 'MISSED'} - "
        f"max {t['common_path_max_calls']} over {t['common_path_answers']} answers routed without the LLM, "
        f"max {t['router_llm_max_calls']} over {t['router_llm_answers']} routed by the LLM"
    )
    return (
        head
        + "\n"
        + table(
            [
                "questions",
                "n",
                "calls mean",
                "calls max",
                "calls histogram",
                "prompt tok",
                "completion tok",
                "USD/answer",
                "metadata != counted",
            ],
            rows,
        )
        + "\n"
        + foot
    )


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.llm_calls", description=__doc__)
    p.add_argument(
        "--tokens", type=int, default=150, help="tokens per fake answer (a typical answer length)"
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N eval cases")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    with start_stack(tokens=args.tokens) as stack:
        data = asyncio.run(measure(stack, args.limit))
    data["summary"] = summarise(data["answers"])
    data["target"] = target_check(data["answers"])
    data["config"] = {
        "tokens": args.tokens,
        "limit": args.limit,
        "command": "python -m bench.llm_calls " + " ".join(argv or []),
    }
    print(report(data))
    if not args.no_write:
        print("wrote", write_result("llm_calls", data))
    return data


if __name__ == "__main__":
    main()
