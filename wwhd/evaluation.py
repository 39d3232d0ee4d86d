"""Answer-quality evaluation: run cases through the real pipeline and score routing, retrieval and citations."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from sqlalchemy import select

from .deps import Deps
from .extensions import db
from .knowledge.namespaces import NamespaceInfo
from .links import youtube_id
from .models import Chunk, Document
from .pipeline.context import PipelineContext
from .pipeline.graph import run_turn_into

RECALL_K = 5
TIME_TOLERANCE_S = 60.0
MARKER_RE = re.compile(r"\[(\d{1,3})\]")
# How an honest answer says the material has nothing on the question (ours, or an LLM's own wording).
NOT_COVERED_RE = re.compile(
    r"\b(doesn'?t|does not|don'?t|do not|isn'?t|is not|aren'?t|are not|never)\s+(really\s+)?"
    r"(cover|covered|address|addressed|discuss|discussed|mention|mentioned|talk about|include|say anything)"
    r"|\bnot covered\b|\bnothing (in|on|about)\b|\bno (material|passages?|sources?|information)\b"
    r"|\boutside (of )?(what|his|herman)",
    re.I,
)

# name → (summary key, label); thresholds compare against the summary value.
METRICS = {
    "router_accuracy": "Router accuracy",
    "recall_at_5": "Recall@5",
    "mrr": "MRR",
    "citation_precision": "Citation precision",
    "oos_honesty": "Out-of-scope honesty",
    "oos_honesty_far": "Out-of-scope honesty (far)",
    "citation_on_time": "Citation within ±60 s",
    "answered_rate": "In-scope answered",
}


class CaseFileError(ValueError):
    """The cases file cannot be read; the message names the line."""


# -- cases ------------------------------------------------------------------------------------------
def parse_timestamp(value: str | int | float | None) -> float | None:
    """'HH:MM:SS', 'MM:SS' or seconds → seconds. Raises ValueError on anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not re.fullmatch(r"\d{1,3}(:\d{1,2}){0,2}", value.strip()):
        raise ValueError(f"bad timestamp {value!r} (use HH:MM:SS)")
    seconds = 0.0
    for part in value.strip().split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def load_cases(path: str | Path) -> list[dict]:
    """Cases from a JSON Lines file, validated; blank lines and `#` comments are skipped.

    Raises CaseFileError naming the offending line.
    """
    cases: list[dict] = []
    seen: set[str] = set()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseFileError(f"{path}: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            case = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CaseFileError(f"{where}: not JSON ({exc.msg})") from None
        if (
            not isinstance(case, dict)
            or not isinstance(case.get("question"), str)
            or not case["question"].strip()
        ):
            raise CaseFileError(f"{where}: each case needs a non-empty 'question'")
        case.setdefault("id", f"case-{number}")
        case["id"] = str(case["id"])
        if case["id"] in seen:
            raise CaseFileError(f"{where}: duplicate id {case['id']!r}")
        namespaces = case.get("namespaces") or []
        if not isinstance(namespaces, list) or not all(isinstance(n, str) for n in namespaces):
            raise CaseFileError(f"{where}: 'namespaces' must be a list of names")
        case["namespaces"] = namespaces
        try:
            case["timestamp_s"] = parse_timestamp(case.get("timestamp"))
        except ValueError as exc:
            raise CaseFileError(f"{where}: {exc}") from None
        case["out_of_scope"] = bool(case.get("out_of_scope"))
        if case.get("follow_up_of") and case["follow_up_of"] not in seen:
            raise CaseFileError(
                f"{where}: follow_up_of {case['follow_up_of']!r} must name an earlier case"
            )
        case.setdefault("kind", "out_of_scope" if case["out_of_scope"] else "direct")
        seen.add(case["id"])
        cases.append(case)
    if not cases:
        raise CaseFileError(f"{path}: no cases")
    return cases


# -- metrics (pure functions) -----------------------------------------------------------------------
def router_correct(expected: Iterable[str], routed: Iterable[str]) -> bool:
    """Every expected namespace except `general` was searched; `general` is always searched, so it
    never counts. A general-only question is routed correctly when the search ran at all (it is
    never wrong to add a topical namespace on top of `general`)."""
    routed = set(routed)
    wanted = set(expected) - {"general"}
    if not wanted:
        return bool(routed)
    return wanted <= routed


def passage_matches(
    passage: Mapping,
    document_id: int,
    expected_s: float | None,
    tolerance_s: float = TIME_TOLERANCE_S,
) -> bool:
    """The passage is from the expected document and, when a time is expected, spans it ± tolerance."""
    if passage.get("document_id") != document_id:
        return False
    if expected_s is None:
        return True
    start, end = passage.get("start_s"), passage.get("end_s")
    if start is None:
        return False
    end = start if end is None else end
    return start - tolerance_s <= expected_s <= end + tolerance_s


def first_hit_rank(
    passages: list[Mapping], document_id: int | None, expected_s: float | None, k: int = RECALL_K
) -> int | None:
    """1-based rank of the first matching passage in the top k, or None."""
    if document_id is None:
        return None
    for rank, passage in enumerate(passages[:k], start=1):
        if passage_matches(passage, document_id, expected_s):
            return rank
    return None


def _timestamp_seconds(text: str) -> int | None:
    try:
        value = parse_timestamp(text)
    except ValueError:
        return None
    return None if value is None else int(value)


def citation_problems(
    citation: Mapping, passages: list[Mapping], chunk: Mapping | None
) -> list[str]:
    """Why a citation is wrong ([] when it is right).

    `chunk` is the system of record for the cited chunk id (SQL row joined with its document:
    document_id, start_s, page, youtube_url, source_url); the citation must point at a retrieved
    passage, carry that chunk's document, and link to that chunk's second (or page).
    """
    problems = []
    if citation.get("chunk_id") not in {p.get("chunk_id") for p in passages}:
        problems.append("not among the retrieved passages")
    if chunk is None:
        return problems + ["cited chunk does not exist"]
    if citation.get("document_id") != chunk["document_id"]:
        problems.append("document_id differs from the chunk's")
    start = chunk.get("start_s")
    # A citation points at the chunk's start or at one of its timed lines (where the answer is said).
    allowed = (
        set()
        if start is None
        else {int(start)} | {int(second) for _, second in chunk.get("marks") or []}
    )
    cited_ts = _timestamp_seconds(citation.get("timestamp") or "")
    expected_ts = cited_ts if cited_ts in allowed else (None if start is None else int(start))
    if (cited_ts not in allowed) if allowed else cited_ts is not None:
        problems.append(
            f"timestamp {citation.get('timestamp')!r} is not a moment of the chunk (start {start})"
        )
    url = citation.get("url") or ""
    parsed = urlparse(url)
    if chunk.get("youtube_url"):
        wanted_video = youtube_id(chunk["youtube_url"])
        query = parse_qs(parsed.query)
        if youtube_id(url) != wanted_video:
            problems.append("url is not the chunk's video")
        elif expected_ts is not None and query.get("t") != [f"{expected_ts}s"]:
            problems.append(f"url does not start at the chunk's second ({expected_ts}s)")
    elif chunk.get("source_url"):
        if not url.startswith(chunk["source_url"]):
            problems.append("url is not the chunk's source")
        elif chunk.get("page") and parsed.fragment != f"page={chunk['page']}":
            problems.append("url does not open the chunk's page")
    return problems


def dangling_markers(answer: str, citations: int | list[Mapping]) -> list[int]:
    """Inline [n] markers that point at no citation (a source the answer invented). A citation
    answers to its `position` (the answer's n) when it has one, else to its place in the list."""
    if isinstance(citations, int):
        known = set(range(1, citations + 1))
    else:
        known = {c.get("position") or i for i, c in enumerate(citations, start=1)}
    return sorted({int(n) for n in MARKER_RE.findall(answer or "") if int(n) not in known})


def cited_moment(citations: list[Mapping], document_id: int | None) -> int | None:
    """The second of the first citation of `document_id` (the source the answer is said in)."""
    for c in citations:
        if c.get("document_id") == document_id:
            return _timestamp_seconds(c.get("timestamp") or "")
    return None


def duplicate_citations(citations: list[Mapping], window_s: float = 90.0) -> int:
    """Citations repeating an earlier one: same source and start within `window_s`, or the same
    untimed chunk (or page)."""
    repeats = 0
    kept: list[Mapping] = []
    for c in citations:
        start = _timestamp_seconds(c.get("timestamp") or "")
        for k in kept:
            if k.get("document_id") != c.get("document_id"):
                continue
            other = _timestamp_seconds(k.get("timestamp") or "")
            if start is not None and other is not None:
                same = abs(start - other) < window_s
            else:
                same = k.get("chunk_id") == c.get("chunk_id") or (
                    "#page=" in c.get("url", "") and k.get("url") == c.get("url")
                )
            if same:
                repeats += 1
                break
        kept.append(c)
    return repeats


def says_not_covered(answer: str) -> bool:
    return bool(NOT_COVERED_RE.search(answer or ""))


def oos_honest(answer: str, citations: list) -> bool:
    """An out-of-scope question got no sources and an answer that says the material does not cover it."""
    return not citations and says_not_covered(answer)


def mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


# -- running --------------------------------------------------------------------------------------
@dataclass
class CaseResult:
    id: str
    kind: str
    question: str
    expected_namespaces: list[str]
    routed_namespaces: list[str]
    route_method: str | None
    router_ok: bool | None
    document: str | None
    timestamp: str | None
    rank: int | None
    retrieved: list[str]
    covered: bool
    citations: int
    citations_valid: int
    citation_problems: list[str]
    duplicate_citations: int
    out_of_scope: bool
    honest: bool | None
    llm_calls: int
    tokens: int
    ms: float
    oos_kind: str | None = None  # near | far, for out-of-scope cases that say
    cited_s: int | None = None  # the first citation of the expected document, in seconds
    on_time: bool | None = None  # cited_s within ±TIME_TOLERANCE_S of the expected second
    answer: str = ""
    failures: list[str] = field(default_factory=list)


def _knowledge_lookup(cases: list[dict]) -> tuple[dict[str, int], dict[int, str]]:
    """Document ids for the cases' file names, and file names by id; raises CaseFileError if missing."""
    docs = db.session.execute(
        select(Document.id, Document.filename).where(Document.status == "indexed")
    ).all()
    by_name = {name: doc_id for doc_id, name in docs if name}
    missing = sorted(
        {c["document"] for c in cases if c.get("document") and c["document"] not in by_name}
    )
    if missing:
        raise CaseFileError(
            f"documents not indexed in this knowledge base: {', '.join(missing)} "
            "(for the shipped set run `flask wwhd load-samples` first)"
        )
    return by_name, {doc_id: name or f"#{doc_id}" for doc_id, name in docs}


def _chunks(ids: set[str]) -> dict[str, dict]:
    if not ids:
        return {}
    rows = db.session.execute(
        select(
            Chunk.id,
            Chunk.document_id,
            Chunk.start_s,
            Chunk.marks,
            Chunk.page,
            Document.youtube_url,
            Document.source_url,
        )
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.id.in_(ids))
    ).all()
    return {
        row.id: {
            "document_id": row.document_id,
            "start_s": row.start_s,
            "marks": row.marks,
            "page": row.page,
            "youtube_url": row.youtube_url,
            "source_url": row.source_url,
        }
        for row in rows
    }


def _label(passage: Mapping, names: Mapping[int, str]) -> str:
    name = names.get(passage.get("document_id"), f"#{passage.get('document_id')}")
    stamp = passage.get("timestamp") or (
        f"p{passage['page']}" if passage.get("page") else f"c{passage.get('chunk_index')}"
    )
    return f"{name}@{stamp}"


def run_case(
    deps: Deps,
    registry: tuple[NamespaceInfo, ...],
    case: dict,
    history: list[dict],
    document_ids: Mapping[str, int],
    names: Mapping[int, str],
) -> CaseResult:
    """One case through the same graph the chat API runs; nothing is written to the database."""
    state = {
        "question": case["question"],
        "history": history,
        "namespace_hint": case.get("namespace_hint"),
    }
    ctx = PipelineContext(chat_model=deps.chat_model, index=deps.index, registry=registry)
    started = time.perf_counter()
    events: list[tuple[str, object]] = []
    # The turn worker's own path (tokens through the context's sink), so the eval measures it.
    run_turn_into(deps.graph, state, ctx, events.append)
    final: dict = next((payload for kind, payload in events if kind == "final"), {})
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    passages, citations = final.get("passages") or [], final.get("citations") or []
    answer = final.get("answer", "")
    chunks = _chunks({c.get("chunk_id") for c in citations if c.get("chunk_id")})
    problems = []
    valid = 0
    for number, cited in enumerate(citations, start=1):
        wrong = citation_problems(cited, passages, chunks.get(cited.get("chunk_id")))
        valid += not wrong
        problems += [f"[{number}] {p}" for p in wrong]
    dangling = dangling_markers(answer, citations)
    problems += [f"[{n}] cited in the answer but no such source" for n in dangling]
    routed = final.get("namespaces") or []
    oos = case["out_of_scope"]
    doc_id = document_ids.get(case.get("document") or "")
    rank = first_hit_rank(passages, doc_id, case["timestamp_s"]) if not oos else None
    tokens = sum(int(u.get("total_tokens", 0)) for u in final.get("usage") or [])
    cited_s = cited_moment(citations, doc_id) if not oos and doc_id is not None else None
    on_time = None
    if not oos and doc_id is not None and case["timestamp_s"] is not None:
        on_time = cited_s is not None and abs(cited_s - case["timestamp_s"]) <= TIME_TOLERANCE_S
    result = CaseResult(
        id=case["id"],
        kind=case.get("kind", ""),
        question=case["question"],
        expected_namespaces=case["namespaces"],
        routed_namespaces=routed,
        route_method=final.get("route_method"),
        router_ok=None if oos else router_correct(case["namespaces"], routed),
        document=case.get("document"),
        timestamp=case.get("timestamp"),
        rank=rank,
        retrieved=[_label(p, names) for p in passages],
        covered=bool(final.get("covered")),
        citations=len(citations) + len(dangling),
        citations_valid=valid,
        citation_problems=problems,
        duplicate_citations=duplicate_citations(citations),
        out_of_scope=oos,
        honest=oos_honest(answer, citations) if oos else None,
        oos_kind=case.get("oos") if oos else None,
        cited_s=cited_s,
        on_time=on_time,
        llm_calls=int(final.get("llm_calls", 0)),
        tokens=tokens,
        ms=elapsed,
        answer=answer,
    )
    if result.router_ok is False:
        result.failures.append("router")
    if not oos and doc_id is not None and rank is None:
        result.failures.append("recall")
    if problems:
        result.failures.append("citations")
    if result.honest is False:
        result.failures.append("oos")
    if result.on_time is False:
        result.failures.append("moment")
    return result


def summarize(results: list[CaseResult]) -> dict:
    """Aggregate metrics; see eval/README.md for the exact definitions."""
    in_scope = [r for r in results if not r.out_of_scope]
    with_doc = [r for r in in_scope if r.document]
    oos = [r for r in results if r.out_of_scope]
    cited = sum(r.citations for r in results)
    by_kind: dict[str, dict] = {}
    for kind in dict.fromkeys(r.kind for r in results):
        group = [r for r in results if r.kind == kind]
        docs = [r for r in group if r.document and not r.out_of_scope]
        by_kind[kind] = {
            "cases": len(group),
            "router_accuracy": mean([float(r.router_ok) for r in group if r.router_ok is not None]),
            "recall_at_5": mean([float(r.rank is not None) for r in docs]),
            "mrr": mean([1.0 / r.rank if r.rank else 0.0 for r in docs]),
        }
    return {
        "cases": len(results),
        "in_scope": len(in_scope),
        "out_of_scope": len(oos),
        "router_accuracy": mean([float(r.router_ok) for r in in_scope]),
        "recall_at_5": mean([float(r.rank is not None) for r in with_doc]),
        "mrr": mean([1.0 / r.rank if r.rank else 0.0 for r in with_doc]),
        "citation_precision": round(sum(r.citations_valid for r in results) / cited, 4)
        if cited
        else None,
        "oos_honesty": mean([float(bool(r.honest)) for r in oos]),
        "oos_honesty_far": mean([float(bool(r.honest)) for r in oos if r.oos_kind == "far"]),
        "oos_honesty_near": mean([float(bool(r.honest)) for r in oos if r.oos_kind == "near"]),
        "citation_on_time": mean([float(r.on_time) for r in in_scope if r.on_time is not None]),
        "answered_rate": mean([float(r.covered) for r in in_scope]),
        "two_citations_rate": mean([float(r.citations >= 2) for r in in_scope]),
        "duplicate_citations": sum(r.duplicate_citations for r in results),
        "llm_calls_per_answer": mean([float(r.llm_calls) for r in results]),
        "max_llm_calls": max((r.llm_calls for r in results), default=0),
        "tokens_per_answer": mean([float(r.tokens) for r in results]),
        "ms_per_answer": mean([r.ms for r in results]),
        "by_kind": by_kind,
    }


def evaluate(
    deps: Deps, registry: tuple[NamespaceInfo, ...], cases: list[dict], progress=None
) -> dict:
    """Run every case (follow-ups inside their conversation) and return {summary, cases}.

    Needs an app context; raises CaseFileError when an expected document is not indexed.
    """
    document_ids, names = _knowledge_lookup(cases)
    conversations: dict[str, list[dict]] = {}
    results = []
    for case in cases:
        history = list(conversations.get(case.get("follow_up_of") or "", []))
        result = run_case(deps, registry, case, history, document_ids, names)
        conversations[case["id"]] = history + [
            {"role": "user", "content": case["question"]},
            {"role": "assistant", "content": result.answer},
        ]
        results.append(result)
        if progress:
            progress(result)
    return {"summary": summarize(results), "cases": [asdict(r) for r in results]}


def check_thresholds(summary: Mapping, minimums: Mapping[str, float | None]) -> list[str]:
    """Human-readable failures for every metric below its minimum (a metric with no data fails)."""
    failed = []
    for name, minimum in minimums.items():
        if minimum is None:
            continue
        value = summary.get(name)
        if value is None or value < minimum:
            failed.append(f"{METRICS[name]} {_fmt(value)} is below the minimum {minimum:g}")
    return failed


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def format_report(report: dict, minimums: Mapping[str, float | None] | None = None) -> str:
    """A plain-text table of the summary, per kind, and the failing cases."""
    summary, minimums = report["summary"], minimums or {}
    lines = [f"{'metric':<26}{'value':>10}{'minimum':>10}", "-" * 46]
    for name, label in METRICS.items():
        minimum = minimums.get(name)
        lines.append(
            f"{label:<26}{_fmt(summary[name]):>10}{(f'{minimum:g}' if minimum is not None else '-'):>10}"
        )
    for key, label in (
        ("oos_honesty_near", "Out-of-scope (near)"),
        ("two_citations_rate", "≥2 citations (in scope)"),
        ("duplicate_citations", "Duplicate citations"),
        ("llm_calls_per_answer", "LLM calls/answer"),
        ("max_llm_calls", "Max LLM calls"),
        ("tokens_per_answer", "Tokens/answer"),
        ("ms_per_answer", "ms/answer"),
    ):
        lines.append(f"{label:<26}{_fmt(summary[key]):>10}{'':>10}")
    lines += ["", f"{'kind':<14}{'cases':>6}{'router':>9}{'recall@5':>10}{'MRR':>8}", "-" * 47]
    for kind, row in summary["by_kind"].items():
        lines.append(
            f"{kind:<14}{row['cases']:>6}{_fmt(row['router_accuracy']):>9}"
            f"{_fmt(row['recall_at_5']):>10}{_fmt(row['mrr']):>8}"
        )
    failing = [c for c in report["cases"] if c["failures"]]
    lines.append("")
    lines.append(
        f"{summary['cases']} cases ({summary['out_of_scope']} out of scope); "
        f"{len(failing)} with a failure."
    )
    for case in failing:
        lines.append(
            f"  {case['id']:<10} {','.join(case['failures']):<18} routed={case['routed_namespaces']} "
            f"rank={case['rank']} got={case['retrieved'][:3]}"
            + (
                f" cited={case['cited_s']}s want={case['timestamp']}"
                if case["on_time"] is False
                else ""
            )
        )
        for problem in case["citation_problems"][:3]:
            lines.append(f"             {problem}")
    return "\n".join(lines)
