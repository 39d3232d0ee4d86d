"""CloudWatch Embedded Metric Format lines on stdout: RequestLatency, TokenUsage, cost, errors, retrieval, IndexDrift."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping

from flask import Flask, g, request

from .usage import cost_usd

# A JSON line on stdout reaches CloudWatch Logs through the awslogs driver, and CloudWatch turns
# `_aws` documents into metrics; no agent and no PutMetricData calls.
log = logging.getLogger("wwhd.metrics")

UNITS = frozenset(
    {
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    }
)


class _StdoutLines(logging.Handler):
    """Writes the message as-is: an EMF document must be the whole log line, not wrapped in another one."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # sys.stdout looked up per line, so a redirected stdout (tests, gunicorn) is honoured.
            sys.stdout.write(record.getMessage() + "\n")
            sys.stdout.flush()
        except Exception:  # pragma: no cover - metrics must never break a request
            self.handleError(record)


def _configure_logger() -> None:
    if not any(isinstance(h, _StdoutLines) for h in log.handlers):
        log.addHandler(_StdoutLines())
    log.setLevel(logging.INFO)
    log.propagate = (
        False  # the JSON log handler would wrap the document and CloudWatch would not parse it
    )


def document(
    namespace: str,
    dimensions: Mapping[str, str],
    metrics: Mapping[str, tuple[float, str]],
    *,
    dimension_sets: list[list[str]] | None = None,
    properties: Mapping[str, object] | None = None,
    timestamp_ms: int | None = None,
) -> dict:
    """One EMF document: metric values and dimensions as top-level members, described under `_aws`.

    `metrics` maps name → (value, unit); units are CloudWatch's. Properties are searchable in Logs
    Insights but are not dimensions (a user id as a dimension would be one billed metric per user).
    """
    for name, (_, unit) in metrics.items():
        if unit not in UNITS:
            raise ValueError(f"metric {name}: unit {unit!r} is not a CloudWatch unit")
    doc: dict = {key: value for key, value in (properties or {}).items() if value is not None}
    doc.update({key: str(value) for key, value in dimensions.items()})
    doc.update({name: value for name, (value, _) in metrics.items()})
    doc["_aws"] = {
        "Timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
        "CloudWatchMetrics": [
            {
                "Namespace": namespace,
                "Dimensions": dimension_sets or [list(dimensions)],
                "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()],
            }
        ],
    }
    return doc


def emit(
    config: Mapping,
    dimensions: Mapping[str, str],
    metrics: Mapping[str, tuple[float, str]],
    *,
    dimension_sets: list[list[str]] | None = None,
    properties: Mapping[str, object] | None = None,
) -> None:
    """Write one EMF line (Environment is added to `dimensions`); never raises."""
    if not config.get("METRICS_ENABLED", True):
        return
    try:
        dims = {"Environment": config["METRICS_ENVIRONMENT"], **dimensions}
        sets = [["Environment", *s] for s in dimension_sets] if dimension_sets else None
        log.info(
            json.dumps(
                document(
                    config["METRICS_NAMESPACE"],
                    dims,
                    metrics,
                    dimension_sets=sets,
                    properties=properties,
                ),
                default=str,
                separators=(",", ":"),
            )
        )
    except Exception:  # a metric is never worth a failed request
        logging.getLogger(__name__).exception("metric emit failed")


def record_request(
    config: Mapping,
    method: str,
    route: str,
    status: int,
    latency_ms: float,
    request_id: str | None = None,
    user_id: int | None = None,
) -> None:
    """RequestLatency and 4xx/5xx counts, per endpoint and for the whole environment (the alarm's view)."""
    emit(
        config,
        {"Endpoint": f"{method} {route}"},
        {
            "RequestLatency": (latency_ms, "Milliseconds"),
            "Requests": (1, "Count"),
            "Errors4xx": (1 if 400 <= status < 500 else 0, "Count"),
            "Errors5xx": (1 if status >= 500 else 0, "Count"),
        },
        dimension_sets=[["Endpoint"], []],
        properties={"StatusCode": status, "RequestId": request_id, "UserId": user_id},
    )


def record_turn(
    config: Mapping, final: Mapping, user_id: int | None, message_id: str | None
) -> None:
    """TokenUsage and EstimatedCost per model, and retrieval hits / empty retrievals, for one answered turn."""
    by_model: dict[str, list[int]] = {}
    for used in final.get("usage") or []:
        totals = by_model.setdefault(used.get("model") or "unknown", [0, 0])
        totals[0] += int(used.get("prompt_tokens", 0))
        totals[1] += int(used.get("completion_tokens", 0))
    for model, (prompt, completion) in by_model.items():
        emit(
            config,
            {"Model": model},
            {
                "TokenUsage": (prompt + completion, "Count"),
                "PromptTokens": (prompt, "Count"),
                "CompletionTokens": (completion, "Count"),
                "EstimatedCost": (cost_usd(model, prompt, completion), "None"),
            },
            properties={"UserId": user_id, "MessageId": message_id, "CostCurrency": "USD"},
        )
    if "kb_available" in final:  # crisis replies skip retrieval entirely
        available = bool(final.get("kb_available"))
        hits = len(final.get("passages") or [])  # retrieved; the answer may cite fewer
        emit(
            config,
            {},
            {
                "RetrievalHits": (hits, "Count"),
                "EmptyRetrievals": (1 if available and hits == 0 else 0, "Count"),
                "KnowledgeBaseUnavailable": (0 if available else 1, "Count"),
            },
            properties={"UserId": user_id, "MessageId": message_id},
        )


def record_turn_error(config: Mapping, code: str, user_id: int | None = None) -> None:
    """A chat turn that ended in an `error` event (LLM down, rate limited, timed out, ...)."""
    emit(config, {"ErrorCode": code}, {"TurnErrors": (1, "Count")}, properties={"UserId": user_id})


def record_index_check(config: Mapping, health) -> None:
    """One self-healing check of the index against SQL (reconcile.Health): IndexDrift is the
    number of documents whose points differed (0 when in step), written at every check."""
    emit(
        config,
        {},
        {
            "IndexDrift": (len(health.behind) + len(health.unknown_checksums), "Count"),
            "IndexPointsRepaired": (health.points_written + health.points_deleted, "Count"),
        },
        properties={"DocumentsChecked": health.documents},
    )


def init_app(app: Flask) -> None:
    _configure_logger()

    @app.after_request
    def _request_metrics(response):
        started = g.get("started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule else "unmatched"
            record_request(
                app.config,
                request.method,
                route,
                response.status_code,
                round((time.perf_counter() - started) * 1000, 2),
                g.get("request_id"),
                g.get("user_id"),
            )
        return response
