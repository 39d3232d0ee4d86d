"""CloudWatch Embedded Metric Format lines, checked against the EMF specification."""

from __future__ import annotations

import json
import logging
import time

import jsonschema
import pytest

from tests.tests_support import load_samples_and_login
from wwhd import metrics
from wwhd.extensions import db

# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
EMF_SCHEMA = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": {"type": "string", "minLength": 1, "maxLength": 1024},
                            "Dimensions": {
                                "type": "array",
                                "items": {
                                    "type": "array",
                                    "maxItems": 30,
                                    "items": {"type": "string", "minLength": 1, "maxLength": 250},
                                },
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {
                                        "Name": {
                                            "type": "string",
                                            "minLength": 1,
                                            "maxLength": 1024,
                                        },
                                        "Unit": {"enum": sorted(metrics.UNITS)},
                                        "StorageResolution": {"enum": [1, 60]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def validate_emf(doc: dict) -> None:
    """Schema, plus the spec's rules a schema cannot say: every referenced member exists with the right type."""
    jsonschema.validate(doc, EMF_SCHEMA)
    assert abs(doc["_aws"]["Timestamp"] / 1000 - time.time()) < 3600, (
        "Timestamp is epoch milliseconds"
    )
    for directive in doc["_aws"]["CloudWatchMetrics"]:
        names = [m["Name"] for m in directive["Metrics"]]
        assert len(names) == len(set(names))
        for name in names:
            value = doc.get(name)
            assert (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                or (
                    isinstance(value, list)
                    and 0 < len(value) <= 100
                    and all(isinstance(v, (int, float)) for v in value)
                )
            ), f"metric {name} must be a number (or up to 100 numbers) at the top level"
        for dimension_set in directive["Dimensions"]:
            for key in dimension_set:
                assert isinstance(doc.get(key), str) and 0 < len(doc[key]) <= 1024, (
                    f"dimension {key} must be a string member"
                )
                assert key not in names


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def docs(self, metric: str | None = None) -> list[dict]:
        found = [json.loads(line) for line in self.lines]
        return [
            d
            for d in found
            if metric is None
            or any(
                m["Name"] == metric
                for directive in d["_aws"]["CloudWatchMetrics"]
                for m in directive["Metrics"]
            )
        ]


@pytest.fixture
def emf():
    handler = Collect()
    logger = logging.getLogger("wwhd.metrics")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_request_latency_per_endpoint_and_environment(app_factory, emf):
    app = app_factory(METRICS_ENVIRONMENT="prod")
    client = app.test_client()
    client.get("/health")
    client.get("/api/v1/chats")
    client.get("/nowhere")
    docs = emf.docs("RequestLatency")
    assert len(docs) == 3
    for doc in docs:
        validate_emf(doc)
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "WWHD/API"
        # Per endpoint, and per environment alone: the p95 alarm reads the second.
        assert directive["Dimensions"] == [["Environment", "Endpoint"], ["Environment"]]
        assert {"Name": "RequestLatency", "Unit": "Milliseconds"} in directive["Metrics"]
        assert doc["Environment"] == "prod" and doc["RequestLatency"] >= 0
    health, chats, nowhere = docs
    assert (
        health["Endpoint"] == "GET /health"
        and health["Errors4xx"] == 0
        and health["Errors5xx"] == 0
    )
    assert (
        chats["Endpoint"] == "GET /api/v1/chats"
        and chats["Errors4xx"] == 1
        and chats["StatusCode"] == 401
    )
    assert (
        nowhere["Endpoint"] == "GET unmatched"
    )  # raw paths would explode the dimension's cardinality


def test_token_usage_cost_and_retrieval_for_a_turn(llm_app, fake_llm, emf):
    client, headers = load_samples_and_login(llm_app)
    fake_llm.script(tokens=["Talk ", "it ", "over [1]."], prompt_tokens=1200, completion_tokens=300)
    reply = client.post(
        "/api/v1/chat",
        json={"content": "How do my wife and I stop fighting about money?"},
        headers=headers,
    )
    assert reply.status_code == 200, reply.get_json()
    usage = emf.docs("TokenUsage")
    assert len(usage) == 1
    doc = usage[0]
    validate_emf(doc)
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Dimensions"] == [["Environment", "Model"]]
    assert doc["Model"] == "gpt-4o-mini" and doc["Environment"] == "testing"
    assert (
        doc["TokenUsage"] == 1500 and doc["PromptTokens"] == 1200 and doc["CompletionTokens"] == 300
    )
    assert doc["EstimatedCost"] == pytest.approx((1200 * 0.15 + 300 * 0.60) / 1e6)
    # The user is a property (searchable in Logs Insights), never a dimension (one billed metric per user).
    with llm_app.app_context():
        from wwhd.models import User

        assert doc["UserId"] == db.session.query(User).filter_by(email="llm@example.com").one().id
    assert all("UserId" not in s for d in directive["Dimensions"] for s in d)
    assert doc["MessageId"] == reply.get_json()["message_id"]
    retrieval = emf.docs("RetrievalHits")
    assert len(retrieval) == 1
    validate_emf(retrieval[0])
    # Retrieved passages (all shown); the message saves the ones the answer cites ([1] here).
    assert retrieval[0]["RetrievalHits"] == len(reply.get_json()["citations"]) > 0
    assert retrieval[0]["EmptyRetrievals"] == 0 and retrieval[0]["KnowledgeBaseUnavailable"] == 0


def test_empty_retrieval_is_counted(samples, client, auth, emf):
    reply = client.post(
        "/api/v1/chat",
        json={"content": "Explain how quantum computers factor large numbers"},
        headers=auth.headers("user"),
    )
    assert reply.status_code == 200
    doc = emf.docs("EmptyRetrievals")[0]
    validate_emf(doc)
    assert doc["EmptyRetrievals"] == 1 and doc["RetrievalHits"] == 0
    assert emf.docs("TokenUsage") == []  # no passages, no model call, nothing billed
    covered = client.post(
        "/api/v1/chat",
        json={"content": "How do my wife and I stop fighting about money?"},
        headers=auth.headers("user"),
    )
    assert covered.status_code == 200
    # The offline model reports its (free) usage under its own model name.
    offline = emf.docs("TokenUsage")[0]
    assert offline["Model"] == "offline-extractive" and offline["EstimatedCost"] == 0


def test_failed_turns_and_5xx_are_counted(llm_app, fake_llm, emf):
    client, headers = load_samples_and_login(llm_app)
    fake_llm.script(status=500)
    reply = client.post(
        "/api/v1/chat",
        json={"content": "How do my wife and I stop fighting about money?"},
        headers=headers,
    )
    assert reply.status_code == 503
    errors = emf.docs("TurnErrors")
    assert len(errors) == 1
    validate_emf(errors[0])
    assert errors[0]["ErrorCode"] == "LLM_ERROR" and errors[0]["_aws"]["CloudWatchMetrics"][0][
        "Dimensions"
    ] == [["Environment", "ErrorCode"]]
    request_doc = [d for d in emf.docs("RequestLatency") if d["Endpoint"] == "POST /api/v1/chat"][0]
    assert request_doc["Errors5xx"] == 1 and request_doc["StatusCode"] == 503


def test_lines_are_bare_documents_on_stdout(app, capsys):
    capsys.readouterr()
    app.test_client().get("/health")
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    emf_lines = [line for line in lines if "_aws" in line]
    assert emf_lines, "EMF documents go to stdout, one per line"
    for doc in emf_lines:
        validate_emf(doc)
        assert "level" not in doc and "message" not in doc  # not wrapped in an app log record


def test_metrics_can_be_switched_off(app_factory, emf):
    app = app_factory(METRICS_ENABLED=False)
    app.test_client().get("/health")
    assert emf.lines == []


def test_document_rejects_units_cloudwatch_does_not_know():
    with pytest.raises(ValueError):
        metrics.document("WWHD/API", {"Environment": "dev"}, {"Latency": (1.0, "ms")})
    validate_emf(
        metrics.document("WWHD/API", {"Environment": "dev"}, {"Latency": (1.0, "Milliseconds")})
    )
