"""Every input format, ingested on the real engine and read back field by field: the
captured CloudExporter batches (as the collector writes them), the specification's
``{type, data}`` envelope and plain shapes, the core's own event models, pino lines,
and bad lines (counted and skipped)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mastra_admin.core.events import LogLevel, SpanStatus
from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.observability import (
    FeedbackQuery,
    LogQuery,
    MetricQuery,
    ScoreQuery,
    SpanQuery,
    TraceQuery,
)
from mastra_admin.core.observability_writer import write_batch
from mastra_admin.observability.clickhouse import ClickHouseObservability

from .conftest import fixture_records, jsonl

TRACE = "27712e47a2c673afd73afac18fcacaa5"
ROOT = "f9a3db6bb21c4229"
STEP = "27edaf258af04d7f"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def ingest_all(
    backend: ClickHouseObservability, storage: LocalFileStorage, build_dirs: list[str] | None = None
) -> tuple[int, int]:
    worker = backend.ingestion_worker(storage, build_dirs=build_dirs)
    events = bad = 0
    for _ in range(10):
        result = await worker.process_once()
        assert not result.errors, result.errors
        events += result.events_ingested
        bad += result.bad_lines
        if result.files_processed == 0:
            break
    await worker.stop()
    return events, bad


async def write_collector_batches(storage: LocalFileStorage) -> None:
    """What the collector does with each request: every record gets the project and
    deployment ids, and the batch becomes one file."""
    kinds = {
        "spans": "span",
        "logs": "log",
        "metrics": "metric",
        "scores": "score",
        "feedback": "feedback",
    }
    for signal, kind in kinds.items():
        records = [
            {**r, "project_id": "proj_abc", "deployment_id": "dep_1"}
            for r in fixture_records(signal)
        ]
        await write_batch(storage, kind, "proj_abc", records)


async def test_cloud_exporter_batches_read_back_field_by_field(
    backend: ClickHouseObservability, storage: LocalFileStorage
) -> None:
    await write_collector_batches(storage)
    events, bad = await ingest_all(backend, storage)
    assert (events, bad) == (6, 0)
    query = backend.query

    tree = await query.get_trace(TRACE)
    assert tree is not None
    assert tree.roots == [ROOT]
    assert tree.children == {ROOT: [STEP]}
    trace = tree.trace
    assert trace.project_id == "proj_abc"
    assert trace.deployment_id == "dep_1"
    assert trace.name == "workflow run: 'greet'"
    assert trace.status == SpanStatus.OK
    assert trace.start_time == at("2026-11-21T22:40:51.726Z")
    assert trace.end_time == at("2026-11-21T22:40:51.733Z")
    assert trace.duration_ms == 7.0
    assert trace.span_count == 2
    assert trace.input == {"name": "ada"}
    assert trace.output == {"greeting": "HELLO ADA"}
    assert trace.metadata == {"runId": "4ede2f01-c19d-407e-b6f9-fb9a0ffec624"}

    spans = {s.span_id: s for s in tree.spans}
    root, step = spans[ROOT], spans[STEP]
    assert root.is_root
    assert root.parent_span_id is None
    assert root.span_type == "workflow_run"
    assert root.entity_type == "workflow_run"
    assert root.entity_id == "greet"
    assert root.entity_name == "greet"
    assert step.trace_id == TRACE
    assert step.parent_span_id == ROOT
    assert not step.is_root
    assert step.name == "workflow step: 'shout'"
    assert step.span_type == "workflow_step"
    assert step.kind == "internal"
    assert step.status == SpanStatus.OK
    assert step.entity_type == "workflow_step"
    assert step.entity_id == "shout"
    assert step.entity_name == "greet"
    assert step.start_time == at("2026-11-21T22:40:51.730Z")
    assert step.end_time == at("2026-11-21T22:40:51.732Z")
    assert step.duration_ms == 2.0
    assert step.attributes == {"status": "success"}
    assert step.metadata == {"runId": "4ede2f01-c19d-407e-b6f9-fb9a0ffec624"}
    assert step.input == {"name": "ada"}
    assert step.output == {"greeting": "HELLO ADA"}
    assert step.error is None
    assert step.events == []

    (log,) = (await query.list_logs(LogQuery())).items
    assert log.id == "b5d62820-660f-47c1-b1d3-6d59a6c50083"
    assert log.level == LogLevel.WARN
    assert log.message.startswith("No `storage` configured on Mastra \u2014 falling back")
    assert log.timestamp == at("2026-11-21T22:40:44.964Z")
    assert log.project_id == "proj_abc"
    assert log.deployment_id == "dep_1"
    assert log.trace_id is None
    assert log.attributes == {"correlationContext": {"serviceName": "probe"}}

    (metric,) = (await query.list_metrics(MetricQuery())).items
    assert metric.id == "c49f915e-b3d5-4b47-9836-b10a935e8adf"
    assert metric.name == "mastra_workflow_duration_ms"
    assert metric.value == 7.0
    assert metric.timestamp == at("2026-11-21T22:40:51.734Z")
    assert metric.labels == {"status": "ok"}
    assert metric.trace_id == TRACE
    assert metric.span_id == ROOT
    assert metric.metadata["runId"] == "4ede2f01-c19d-407e-b6f9-fb9a0ffec624"
    assert metric.metadata["correlationContext"]["entityName"] == "greet"

    (score,) = (await query.list_scores(ScoreQuery())).items
    assert score.id == "0b8d2b52-4f7e-4a51-9c57-2f0b3c1d9e11"
    assert score.name == "Answer relevancy"
    assert score.scorer == "answer-relevancy"
    assert score.value == 0.82
    assert score.reason == "The greeting answers the request."
    assert score.timestamp == at("2026-11-21T22:40:52.010Z")
    assert score.trace_id == TRACE
    assert score.span_id == ROOT
    assert score.metadata["scorerVersion"] == "1"
    assert score.metadata["scoreSource"] == "live"
    assert score.metadata["targetEntityType"] == "workflow_run"

    (feedback,) = (await query.list_feedback(FeedbackQuery())).items
    assert feedback.id == "5d1c7a9e-3b2f-4f0e-8a61-7c2d4e5f6a70"
    assert feedback.timestamp == at("2026-11-21T22:41:03.500Z")
    assert feedback.trace_id == TRACE
    assert feedback.span_id == ROOT
    assert feedback.source == "user"
    assert feedback.feedback_type == "thumbs"
    assert feedback.value == 1
    assert feedback.comment == "nice"
    assert feedback.user_id == "user-42"
    assert feedback.metadata["correlationContext"]["entityType"] == "workflow_run"


async def test_the_specification_shapes_and_envelope(
    backend: ClickHouseObservability, storage: LocalFileStorage, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    iso = now.isoformat().replace("+00:00", "Z")
    later = (now + timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    plain = [
        {
            "type": "trace",
            "id": "tr-1",
            "projectId": "proj_s",
            "deploymentId": "dep_s",
            "name": "checkout",
            "status": "error",
            "startTime": iso,
            "endTime": later,
            "durationMs": 2000,
            "input": "question?",
            "output": None,
            "metadata": {"k": "v"},
            "recordedAt": later,
        },
        {
            "type": "log",
            "id": "log-1",
            "projectId": "proj_s",
            "deploymentId": "dep_s",
            "traceId": "tr-1",
            "spanId": "sp-1",
            "level": "error",
            "message": "payment failed",
            "timestamp": iso,
            "attributes": {"code": 402},
        },
        {
            "type": "metric",
            "id": "m-1",
            "projectId": "proj_s",
            "deploymentId": "dep_s",
            "name": "orders",
            "metricType": "counter",
            "value": 3,
            "unit": "count",
            "timestamp": iso,
            "labels": {"region": "eu"},
        },
        {
            "type": "score",
            "id": "sc-1",
            "projectId": "proj_s",
            "deploymentId": "dep_s",
            "traceId": "tr-1",
            "name": "accuracy",
            "value": 0.5,
            "normalizedValue": 0.5,
            "comment": "half right",
            "timestamp": iso,
            "metadata": {},
        },
    ]
    for record in plain:
        folder = {"trace": "traces", "log": "logs", "metric": "metrics", "score": "scores"}
        await storage.write(f"{folder[str(record['type'])]}/proj_s/1_a.jsonl", jsonl([record]))
    # The FileExporter of the specification, in a build's observability folder.
    build = tmp_path / "builds" / "build_1" / "observability"
    (build / "spans").mkdir(parents=True)
    envelope = {
        "type": "span",
        "projectId": "proj_s",
        "deploymentId": "dep_s",
        "timestamp": 1,
        "data": {
            "id": "sp-1",
            "traceId": "tr-1",
            "name": "charge card",
            "type": "tool_call",
            "startTime": iso,
            "endTime": later,
            "isRootSpan": False,
            "parentSpanId": "sp-0",
            "errorInfo": {"message": "declined", "id": "E1"},
            "attributes": {"amount": 12},
        },
    }
    spec_span = {
        "type": "span",
        "id": "sp-2",
        "traceId": "tr-1",
        "parentSpanId": "sp-1",
        "projectId": "proj_s",
        "deploymentId": "dep_s",
        "name": "http post",
        "kind": "client",
        "status": "ok",
        "startTime": iso,
        "endTime": later,
        "durationMs": 1500,
        "attributes": {"url": "/pay"},
        "events": [{"name": "retry"}],
    }
    (build / "spans" / "1_x.jsonl").write_bytes(jsonl([envelope, spec_span]))
    events, bad = await ingest_all(backend, storage, [str(tmp_path / "builds")])
    assert (events, bad) == (6, 0)
    query = backend.query

    (trace,) = (await query.list_traces(TraceQuery(project_id="proj_s"))).items
    assert (trace.trace_id, trace.name, trace.status) == ("tr-1", "checkout", SpanStatus.ERROR)
    assert trace.deployment_id == "dep_s"
    assert trace.duration_ms == 2000
    assert trace.input == "question?"
    assert trace.output is None
    assert trace.metadata == {"k": "v"}
    assert trace.span_count == 2

    spans = {s.span_id: s for s in (await query.list_spans(SpanQuery(trace_id="tr-1"))).items}
    charge = spans["sp-1"]
    assert charge.project_id == "proj_s"
    assert charge.span_type == "tool_call"
    assert charge.status == SpanStatus.ERROR
    assert charge.error == {"message": "declined", "id": "E1"}
    assert charge.parent_span_id == "sp-0"
    assert charge.attributes == {"amount": 12}
    post = spans["sp-2"]
    assert (post.kind, post.status, post.duration_ms) == ("client", SpanStatus.OK, 1500)
    assert post.events == [{"name": "retry"}]
    assert post.span_type == ""

    (log,) = (await query.list_logs(LogQuery(project_id="proj_s"))).items
    assert (log.id, log.level, log.message) == ("log-1", LogLevel.ERROR, "payment failed")
    assert (log.trace_id, log.span_id, log.attributes) == ("tr-1", "sp-1", {"code": 402})
    (metric,) = (await query.list_metrics(MetricQuery(project_id="proj_s"))).items
    assert (metric.type, metric.value, metric.labels) == ("counter", 3.0, {"region": "eu"})
    (score,) = (await query.list_scores(ScoreQuery(project_id="proj_s"))).items
    assert (score.name, score.value, score.reason) == ("accuracy", 0.5, "half right")
    assert score.metadata == {"normalizedValue": 0.5}


async def test_pino_lines_and_bad_lines(
    backend: ClickHouseObservability, storage: LocalFileStorage, tmp_path: Path
) -> None:
    ms = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
    build = tmp_path / "builds" / "b7" / "observability"
    (build / "logs").mkdir(parents=True)
    (build / "meta.json").write_text(
        json.dumps({"project_id": "proj_p", "deployment_id": "dep_p", "build_id": "b7"})
    )
    lines = [
        {"level": 10, "time": ms, "pid": 7, "hostname": "h", "msg": "trace level"},
        {"level": 20, "time": ms + 1, "msg": "debug level"},
        {"level": 30, "time": ms + 2, "msg": "info level", "component": "agents"},
        {"level": 40, "time": ms + 3, "msg": "warn level"},
        {"level": 50, "time": ms + 4, "msg": "error level", "err": {"type": "Error"}},
        {"level": 60, "time": ms + 5, "msg": "fatal level"},
        {"level": "warn", "time": ms + 6, "msg": "labelled level"},
    ]
    body = (
        jsonl(lines)
        + b"{not json\n\n[1, 2]\n"
        + jsonl([{"level": 30, "time": ms + 7, "msg": "after the bad ones"}])
    )
    (build / "logs" / "1_p.jsonl").write_bytes(body)
    events, bad = await ingest_all(backend, storage, [str(tmp_path / "builds")])
    assert (events, bad) == (8, 2)
    page = await backend.query.list_logs(LogQuery(project_id="proj_p", limit=100))
    got = {log.message: log for log in page.items}
    assert {m: got[m].level for m in got} == {
        "trace level": LogLevel.DEBUG,
        "debug level": LogLevel.DEBUG,
        "info level": LogLevel.INFO,
        "warn level": LogLevel.WARN,
        "error level": LogLevel.ERROR,
        "fatal level": LogLevel.FATAL,
        "labelled level": LogLevel.WARN,
        "after the bad ones": LogLevel.INFO,
    }
    info = got["info level"]
    assert info.deployment_id == "dep_p"
    assert info.timestamp == datetime.fromtimestamp((ms + 2) / 1000, tz=UTC)
    assert info.attributes == {"component": "agents"}
    assert got["trace level"].attributes == {"pid": 7, "hostname": "h"}
    assert got["error level"].attributes == {"err": {"type": "Error"}}
    rows = await backend.transport.fetch(
        f"SELECT reason, line FROM {backend.settings.database}.mastra_admin_ingest_rejects "
        "ORDER BY line"
    )
    assert [(r["reason"], r["line"]) for r in rows] == [
        ("missing required fields", "[1, 2]"),
        ("not a JSON object", "{not json"),
    ]
