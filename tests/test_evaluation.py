"""The evaluation harness: its metrics, and the shipped set run through the real pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import close_app, make_app
from wwhd.evaluation import (
    CaseFileError,
    check_thresholds,
    citation_problems,
    dangling_markers,
    duplicate_citations,
    first_hit_rank,
    load_cases,
    oos_honest,
    parse_timestamp,
    passage_matches,
    router_correct,
    says_not_covered,
)
from wwhd.pipeline.prompts import NOT_COVERED

SHIPPED = Path(__file__).resolve().parent.parent / "eval" / "sample_cases.jsonl"
# Floors at what the shipped set measures with the semantic default (eval/RESULTS.md): a drop fails.
TARGETS = [
    "--min-router-accuracy",
    "0.94",
    "--min-recall",
    "0.90",
    "--min-mrr",
    "0.80",
    "--min-citation-precision",
    "1.0",
    "--min-oos-honesty",
    "1.0",
]
UNSEEN = SHIPPED.parent / "unseen"
# The held-out split of eval/unseen, never tuned on: floors at its measured values (eval/RESULTS.md).
HELDOUT_FLOORS = [
    "--min-router-accuracy",
    "0.95",
    "--min-recall",
    "0.70",
    "--min-citation-precision",
    "1.0",
    "--min-oos-honesty-far",
    "1.0",
    "--min-answered",
    "0.95",
    "--min-citation-on-time",
    "0.60",
]


# -- metric functions -------------------------------------------------------------------------------
def test_router_correct_ignores_general_but_needs_every_topic():
    assert router_correct(["money", "relationships"], ["relationships", "money", "general"])
    assert not router_correct(["money", "relationships"], ["money", "general"])
    assert router_correct(["meditation", "general"], ["meditation", "business", "general"])
    assert router_correct(["general"], ["general"]) and router_correct(
        ["general"], ["money", "general"]
    )
    assert not router_correct(["general"], [])  # nothing searched at all


def test_passage_matches_document_and_time_window():
    passage = {"document_id": 3, "start_s": 100.0, "end_s": 200.0}
    assert passage_matches(passage, 3, None)
    assert passage_matches(passage, 3, 40.0) and passage_matches(passage, 3, 260.0)
    assert not passage_matches(passage, 3, 39.0) and not passage_matches(passage, 3, 261.0)
    assert not passage_matches(passage, 4, 150.0)
    assert not passage_matches({"document_id": 3, "start_s": None, "end_s": None}, 3, 150.0)
    assert passage_matches({"document_id": 3, "start_s": None}, 3, None)


def test_first_hit_rank_is_one_based_within_k():
    passages = [
        {"document_id": 1, "start_s": 0, "end_s": 50},
        {"document_id": 2, "start_s": 0, "end_s": 50},
        {"document_id": 2, "start_s": 600, "end_s": 700},
    ]
    assert first_hit_rank(passages, 2, 650.0) == 3
    assert first_hit_rank(passages, 2, None) == 2
    assert first_hit_rank(passages, 2, 650.0, k=2) is None
    assert (
        first_hit_rank(passages, 9, None) is None and first_hit_rank(passages, None, None) is None
    )


def test_parse_timestamp():
    assert (
        parse_timestamp("00:04:30") == 270
        and parse_timestamp("4:30") == 270
        and parse_timestamp(12) == 12.0
    )
    assert parse_timestamp(None) is None and parse_timestamp("") is None
    with pytest.raises(ValueError):
        parse_timestamp("four minutes")


CHUNK = {
    "document_id": 7,
    "start_s": 125.4,
    "page": None,
    "youtube_url": "https://youtu.be/hT4kq9Zr2Lw",
    "source_url": None,
}
GOOD = {
    "chunk_id": "c1",
    "document_id": 7,
    "timestamp": "00:02:05",
    "url": "https://www.youtube.com/watch?v=hT4kq9Zr2Lw&t=125s",
}


def test_citation_problems_checks_retrieval_document_url_and_time():
    passages = [{"chunk_id": "c1"}]
    assert citation_problems(GOOD, passages, CHUNK) == []
    assert citation_problems({**GOOD, "timestamp": "02:05"}, passages, CHUNK) == []
    assert citation_problems(GOOD, [{"chunk_id": "other"}], CHUNK) == [
        "not among the retrieved passages"
    ]
    assert "timestamp" in citation_problems({**GOOD, "timestamp": "00:02:06"}, passages, CHUNK)[0]
    assert (
        "second"
        in citation_problems({**GOOD, "url": GOOD["url"].replace("125s", "120s")}, passages, CHUNK)[
            0
        ]
    )
    assert (
        "video"
        in citation_problems(
            {**GOOD, "url": "https://www.youtube.com/watch?v=xxxxxxxxxxx&t=125s"}, passages, CHUNK
        )[0]
    )
    assert "document_id" in citation_problems({**GOOD, "document_id": 8}, passages, CHUNK)[0]
    assert citation_problems(GOOD, passages, None) == ["cited chunk does not exist"]
    page_chunk = {
        "document_id": 7,
        "start_s": None,
        "page": 3,
        "youtube_url": None,
        "source_url": "https://x.org/a.pdf",
    }
    page_cite = {
        "chunk_id": "c1",
        "document_id": 7,
        "timestamp": "",
        "url": "https://x.org/a.pdf#page=3",
    }
    assert citation_problems(page_cite, passages, page_chunk) == []
    assert citation_problems(
        {**page_cite, "url": "https://x.org/a.pdf#page=4"}, passages, page_chunk
    )


def test_dangling_markers_and_duplicates():
    assert dangling_markers("As he says [1] and [2], also [4].", 2) == [4]
    assert (
        dangling_markers("No sources [0].", 3) == [0] and dangling_markers("Fine [1][2]", 2) == []
    )
    a = {"document_id": 1, "chunk_id": "a", "timestamp": "00:01:00", "url": "u"}
    assert duplicate_citations([a, {**a, "chunk_id": "b", "timestamp": "00:02:00"}]) == 1
    assert duplicate_citations([a, {**a, "chunk_id": "b", "timestamp": "00:03:00"}]) == 0
    assert duplicate_citations([a, {**a, "document_id": 2}]) == 0
    untimed = {"document_id": 5, "chunk_id": "x", "timestamp": "", "url": "https://site/article"}
    assert duplicate_citations([untimed, {**untimed, "chunk_id": "y"}]) == 0
    assert duplicate_citations([untimed, dict(untimed)]) == 1


def test_out_of_scope_honesty_needs_no_sources_and_a_plain_statement():
    assert says_not_covered(NOT_COVERED)
    assert says_not_covered("Herman's material does not cover car repairs.")
    assert says_not_covered("I'm sorry, but his talks don't address that.")
    assert not says_not_covered("Replace the brake pads; Herman says to check them yearly [1].")
    assert oos_honest(NOT_COVERED, [])
    assert not oos_honest(NOT_COVERED, [{"chunk_id": "c1"}])
    assert not oos_honest("Quantum computers use qubits.", [])


def test_thresholds_fail_below_minimum_and_without_data():
    summary = {
        "router_accuracy": 0.9,
        "recall_at_5": 1.0,
        "mrr": None,
        "citation_precision": 1.0,
        "oos_honesty": 1.0,
    }
    failed = check_thresholds(
        summary,
        {"router_accuracy": 0.95, "recall_at_5": 0.95, "mrr": 0.5, "citation_precision": None},
    )
    assert len(failed) == 2 and "Router accuracy" in failed[0] and "MRR n/a" in failed[1]
    assert check_thresholds(summary, {"router_accuracy": 0.9}) == []


def test_load_cases_validates(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(
        '{"id": "a", "question": "Q?", "timestamp": "00:01:00"}\n\n# note\n'
        '{"id": "b", "question": "And?", "follow_up_of": "a"}\n'
    )
    cases = load_cases(good)
    assert [c["id"] for c in cases] == ["a", "b"] and cases[0]["timestamp_s"] == 60
    for text, message in (
        ('{"question": ""}', "question"),
        ("not json", "not JSON"),
        ('{"id": "a", "question": "Q"}\n{"id": "a", "question": "Q"}', "duplicate"),
        ('{"question": "Q", "follow_up_of": "zz"}', "earlier case"),
        ('{"question": "Q", "timestamp": "soon"}', "timestamp"),
        ('{"question": "Q", "namespaces": "money"}', "namespaces"),
        ("", "no cases"),
    ):
        bad = tmp_path / "bad.jsonl"
        bad.write_text(text)
        with pytest.raises(CaseFileError, match=message):
            load_cases(bad)


def test_shipped_set_is_a_real_evaluation_set():
    cases = load_cases(SHIPPED)
    kinds = {c["kind"] for c in cases}
    assert (
        len(cases) >= 60 and {"direct", "paraphrase", "multi", "follow_up", "out_of_scope"} <= kinds
    )
    manifest = json.loads(
        (SHIPPED.parent.parent / "wwhd" / "samples" / "manifest.json").read_text()
    )
    files = {entry["file"] for entry in manifest}
    assert all(c["document"] in files for c in cases if not c["out_of_scope"])


# -- the command --------------------------------------------------------------------------------------
def test_shipped_set_meets_the_targets_offline(samples, runner, tmp_path):
    out = tmp_path / "report.json"
    result = runner.invoke(
        args=["wwhd", "eval", str(SHIPPED), "--json", str(out), "--quiet", *TARGETS]
    )
    assert result.exit_code == 0, result.output
    assert "Router accuracy" in result.output and "Recall@5" in result.output
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert report["passed"] is True and report["model"] == "offline-extractive"
    assert summary["cases"] == len(load_cases(SHIPPED))
    assert summary["max_llm_calls"] == 0 and summary["duplicate_citations"] == 0
    assert summary["two_citations_rate"] >= 0.90
    assert all(c["citations"] == 0 for c in report["cases"] if c["out_of_scope"])


@pytest.mark.slow
def test_heldout_split_of_unseen_material_meets_its_floors(app, runner, tmp_path):
    """The CI gate on material no retrieval setting was tuned on (eval/unseen, held-out split)."""
    assert runner.invoke(args=["wwhd", "load-samples"]).exit_code == 0
    loaded = runner.invoke(args=["wwhd", "load-samples", "--folder", str(UNSEEN)])
    assert loaded.exit_code == 0, loaded.output
    out = tmp_path / "heldout.json"
    cases = UNSEEN / "heldout_cases.jsonl"
    result = runner.invoke(
        args=["wwhd", "eval", str(cases), "--json", str(out), "--quiet", *HELDOUT_FLOORS]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())["summary"]
    assert summary["cases"] == len(load_cases(cases)) >= 50
    print(
        "\nheld-out: "
        + ", ".join(f"{k}={summary[k]}" for k in ("recall_at_5", "citation_on_time", "oos_honesty"))
    )


def test_thresholds_make_the_command_fail(samples, runner):
    result = runner.invoke(args=["wwhd", "eval", str(SHIPPED), "--quiet", "--min-mrr", "1.0"])
    assert result.exit_code == 1
    assert "FAIL: MRR" in result.output


def test_missing_documents_and_bad_files_are_clear_errors(runner, tmp_path):
    result = runner.invoke(args=["wwhd", "eval", str(SHIPPED)])  # knowledge base not loaded
    assert result.exit_code == 1 and "load-samples" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops")
    result = runner.invoke(args=["wwhd", "eval", str(bad)])
    assert result.exit_code == 1 and "bad.jsonl:1" in result.output
    assert runner.invoke(args=["wwhd", "eval", str(SHIPPED), "--min-mrr", "2"]).exit_code == 2


def test_runs_against_an_openai_compatible_model(tmp_path, fake_llm):
    """Canned answers from the fake server, dense embeddings on: the metrics still compute."""
    app = make_app(
        tmp_path,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_llm.base_url,
        MODEL_CHAT="gpt-4o-mini",
        MODEL_EMBED="text-embedding-3-small",
        LLM_MAX_RETRIES=0,
        LLM_TIMEOUT_S=5,
    )
    try:
        runner = app.test_cli_runner()
        assert runner.invoke(args=["wwhd", "load-samples"]).exit_code == 0
        cases = [json.loads(line) for line in SHIPPED.read_text().splitlines()]
        subset = tmp_path / "subset.jsonl"
        subset.write_text(
            "\n".join(
                json.dumps(c)
                for c in cases
                if c["id"] in {"dir-03", "fu-01", "dir-19", "multi-01", "oos-01", "oos-05"}
            )
        )
        out = tmp_path / "report.json"
        fake_llm.requests.clear()
        result = runner.invoke(args=["wwhd", "eval", str(subset), "--json", str(out)])
        assert result.exit_code == 0, result.output
        report = json.loads(out.read_text())
        by_id = {c["id"]: c for c in report["cases"]}
        summary = report["summary"]
        assert report["model"] == "gpt-4o-mini" and report["embedder"]
        # The canned answer cites [1] only, which exists whenever sources were retrieved.
        assert summary["citation_precision"] == 1.0
        # Retrieval refuses what it can; what passes reaches the model, which decides (the fake
        # always answers, so those count as dishonest here).
        for case in report["cases"]:
            if case["out_of_scope"]:
                assert case["honest"] or case["llm_calls"] >= 1, case
        assert by_id["dir-19"]["llm_calls"] == 1
        assert by_id["dir-19"]["tokens"] > 0 and summary["tokens_per_answer"] > 0
        assert summary["max_llm_calls"] <= 2
        assert (
            by_id["fu-01"]["rank"] is not None
        )  # the follow-up ran with the previous turn as history
        chat_requests = [r for r in fake_llm.requests if r["path"].endswith("/chat/completions")]
        assert len(chat_requests) == sum(c["llm_calls"] for c in report["cases"])
        history = [r for r in chat_requests if "three nights" in json.dumps(r["json"])]
        assert history and "three-night rule" in json.dumps(history[0]["json"])
    finally:
        close_app(app)
