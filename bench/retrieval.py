"""Retrieval latency of KnowledgeIndex.search over embedded Qdrant at growing numbers of synthetic chunks."""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path

from bench.common import MachineLoad, load_cases, summary_ms, table, write_result
from wwhd.knowledge.chunking import chunk_id, chunk_sections
from wwhd.knowledge.index import KnowledgeIndex, make_client
from wwhd.knowledge.parsers import parse_bytes
from wwhd.providers.base import Usage
from wwhd.providers.local_embed import LocalEmbedder
from wwhd.retrieval import Retriever

DEFAULT_SIZES = (1_000, 10_000, 50_000)
NAMESPACES = (
    "general",
    "relationships",
    "money",
    "business",
    "feng_shui",
    "diet_food",
    "exercise_martial_arts",
    "meditation",
)
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")


class RandomEmbedder:
    """Dense vectors for timing only: deterministic per text, no network, no meaning."""

    def __init__(self, dim: int):
        import numpy

        self.name, self.dim, self._np = f"bench-random-{dim}", dim, numpy

    def embed(self, texts: list[str]) -> tuple[list[list[float]], Usage]:
        out = []
        for text in texts:
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            vec = self._np.random.default_rng(seed).standard_normal(self.dim)
            out.append((vec / self._np.linalg.norm(vec)).tolist())
        return out, Usage(model=self.name, kind="embedding")


def sample_sentences() -> list[str]:
    """Every sentence of the shipped sample documents' chunks: the vocabulary synthetic chunks reuse."""
    folder = resources.files("wwhd") / "samples"
    sentences: list[str] = []
    for entry in json.loads((folder / "manifest.json").read_text(encoding="utf-8")):
        parsed = parse_bytes((folder / entry["file"]).read_bytes(), entry["file"])
        for chunk in chunk_sections(parsed.sections):
            sentences.extend(
                s.strip() for s in SENTENCE_RE.split(chunk.text) if len(s.strip()) > 20
            )
    return sentences


def synth_chunks(start: int, count: int, sentences: list[str], rng: random.Random) -> list[dict]:
    """~1,500-character chunks of shuffled sample sentences, with the flat payload the index stores."""
    chunks = []
    for n in range(start, start + count):
        parts, size = [], 0
        while size < 1400:
            sentence = rng.choice(sentences)
            parts.append(sentence)
            size += len(sentence) + 1
        text = " ".join(parts)
        document_id, index = n // 20 + 1, n % 20
        start_s = float(index * 90)
        chunks.append(
            {
                "id": chunk_id(document_id, index, text),
                "text": text,
                "payload": {
                    "document_id": document_id,
                    "namespace": NAMESPACES[document_id % len(NAMESPACES)],
                    "title": f"Synthetic talk {document_id}",
                    "source_url": None,
                    "youtube_url": f"https://www.youtube.com/watch?v=synth{document_id:06d}",
                    "source_platform": "youtube",
                    "start_s": start_s,
                    "end_s": start_s + 90,
                    "page": None,
                    "chunk_index": index,
                    "text": text,
                    "checksum": hashlib.sha256(text.encode()).hexdigest(),
                    "tags": [],
                },
            }
        )
    return chunks


def time_queries(
    index: KnowledgeIndex, queries: list[tuple[str, list[str]]], rounds: int, budget_s: float
) -> dict:
    """Each question filtered (router's namespaces) and unfiltered, then the whole retrieval
    policy (search, coverage decision, moments); stops early once past the time budget."""
    filtered, wide, policy = [], [], []
    retriever = Retriever(index)
    deadline = time.perf_counter() + budget_s
    for _ in range(rounds):
        for question, namespaces in queries:
            if time.perf_counter() > deadline and len(filtered) >= 10:
                break
            started = time.perf_counter()
            index.search(question, namespaces, 20)
            filtered.append(time.perf_counter() - started)
            started = time.perf_counter()
            index.search(question, None, 20)
            wide.append(time.perf_counter() - started)
            started = time.perf_counter()
            retriever.retrieve(question, namespaces)
            policy.append(time.perf_counter() - started)
    return {
        "filtered": summary_ms(filtered),
        "wide": summary_ms(wide),
        "retrieve": summary_ms(policy),
    }


def measure(
    sizes: list[int],
    rounds: int,
    dense_dim: int,
    budget_s: float,
    qdrant_url: str = "",
    batch: int = 512,
    embedder_kind: str = "local",
) -> dict:
    rng = random.Random(6)
    sentences = sample_sentences()
    queries = [
        (c["question"], sorted(set(c["namespaces"]) | {"general"}))
        for c in load_cases()
        if not c.get("out_of_scope")
    ][:40]
    tmp = Path(tempfile.mkdtemp(prefix="wwhd-bench-retrieval-"))
    rows = []
    try:
        client = make_client(url=qdrant_url, path=str(tmp / "qdrant"))
        if embedder_kind == "local":
            embedder, dense_dim = LocalEmbedder(), 0
        else:
            embedder = RandomEmbedder(dense_dim) if dense_dim else None
        alias = f"wwhd_bench_{int(time.time())}"  # on a server: never touch the app's own alias
        index = KnowledgeIndex(client, alias, embedder, dense_dim, local=not qdrant_url)
        index.ensure()
        have = 0
        for size in sorted(sizes):
            started = time.perf_counter()
            while have < size:
                count = min(batch, size - have)
                index.upsert(synth_chunks(have, count, sentences, rng))
                have += count
            indexed_s = time.perf_counter() - started
            index.search(queries[0][0], queries[0][1], 20)  # warm-up
            with MachineLoad() as load:
                timings = time_queries(index, queries, rounds, budget_s)
            rows.append(
                {
                    "chunks": index.count(),
                    "index_seconds": round(indexed_s, 1),
                    **timings,
                    "machine": load.as_dict(),
                }
            )
            print(
                f"  {rows[-1]['chunks']} chunks: filtered p50 {timings['filtered']['p50']} ms, "
                f"wide p50 {timings['wide']['p50']} ms, "
                f"retrieve p50 {timings['retrieve']['p50']} ms",
                flush=True,
            )
        if qdrant_url:  # leave a server as we found it (deleting the collection drops its alias)
            client.delete_collection(index.current_collection())
        client.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"sizes": rows, "queries": len(queries), "rounds": rounds}


def report(data: dict) -> str:
    cfg = data["config"]
    kind = {
        "local": "BM25 + packaged 256-d WordLlama (RRF)",
        "random": f"BM25 + {cfg['dense_dim']}-d random dense (RRF)",
        "none": "BM25 only",
    }[cfg["embedder"]]
    where = (
        "embedded Qdrant on disk"
        if cfg["qdrant"] == "embedded"
        else f"Qdrant server {cfg['qdrant']}"
    )
    head = (
        f"retrieval: KnowledgeIndex.search and Retriever.retrieve (search, coverage, moments), {where}, {kind}, "
        f"{data['queries']} eval questions x {data['rounds']} rounds; filtered = router's namespaces + general"
    )
    rows = [
        [
            r["chunks"],
            r["index_seconds"],
            r["filtered"]["p50"],
            r["filtered"]["p95"],
            r["wide"]["p50"],
            r["wide"]["p95"],
            r["retrieve"]["p50"],
            r["retrieve"]["p95"],
            r["machine"]["cpu_busy_fraction"],
        ]
        for r in data["sizes"]
    ]
    return (
        head
        + "\n"
        + table(
            [
                "chunks",
                "index s",
                "filtered p50 ms",
                "filtered p95 ms",
                "all p50 ms",
                "all p95 ms",
                "retrieve p50 ms",
                "retrieve p95 ms",
                "machine busy",
            ],
            rows,
        )
    )


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.retrieval", description=__doc__)
    p.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    p.add_argument("--rounds", type=int, default=2, help="passes over the question set per size")
    p.add_argument(
        "--embedder",
        choices=("local", "random", "none"),
        default="local",
        help="local: the packaged model (the default); random: --dense-dim random vectors",
    )
    p.add_argument(
        "--dense-dim", type=int, default=0, help="size of random dense vectors (--embedder random)"
    )
    p.add_argument(
        "--budget",
        type=float,
        default=90.0,
        help="seconds of querying per size (at least 10 queries)",
    )
    p.add_argument(
        "--qdrant-url", default="", help="measure a Qdrant server instead of embedded mode"
    )
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    data = measure(
        [int(s) for s in args.sizes.split(",") if s.strip()],
        args.rounds,
        args.dense_dim if args.embedder == "random" else 0,
        args.budget,
        args.qdrant_url,
        embedder_kind=args.embedder,
    )
    data["config"] = {
        "embedder": args.embedder,
        "dense_dim": args.dense_dim,
        "qdrant": args.qdrant_url or "embedded",
        "command": "python -m bench.retrieval " + " ".join(argv or []),
    }
    print(report(data))
    if not args.no_write:
        name = (
            "retrieval"
            + (f"_dense{args.dense_dim}" if args.embedder == "random" else "")
            + ("_bm25" if args.embedder == "none" else "")
            + ("_server" if args.qdrant_url else "")
        )
        print("wrote", write_result(name, data))
    return data


if __name__ == "__main__":
    main()
