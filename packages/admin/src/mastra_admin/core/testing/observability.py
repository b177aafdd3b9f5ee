"""``ObservabilityQueryConformance``: what every observability backend's queries must do.

Subclass it, set ``__test__ = True`` and override the ``backend`` fixture with an
initialised, empty ``ObservabilityBackend``::

    class TestMyObservability(ObservabilityQueryConformance):
        __test__ = True

        @pytest.fixture
        async def backend(self, tmp_path):
            backend = MyObservability(...)
            await backend.init()
            yield backend
            await backend.close()

The suite loads its events with ``ingest``: by default the core's
``ObservabilityWriter`` writes them into a ``LocalFileStorage`` and the backend's own
ingestion worker moves them in, which is the path production data takes. Override
``ingest`` when a backend is loaded differently.

Capabilities:

- ``derives_traces_from_spans``: traces are made from root spans (the suite then
  records spans only); when False the suite also records a ``Trace`` per root span.
- ``percentile_tolerance``: relative error allowed on p50/p95 (approximate
  percentiles are fine).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from mastra_admin.core.events import (
    Feedback,
    Log,
    LogLevel,
    Metric,
    ObservabilityEvent,
    Score,
    Span,
    SpanStatus,
    Trace,
)
from mastra_admin.core.observability import (
    FeedbackQuery,
    LogQuery,
    MetricQuery,
    ObservabilityBackend,
    ScoreQuery,
    SpanQuery,
    TimeSeriesQuery,
    TraceQuery,
)

__all__ = ["ObservabilityDataset", "ObservabilityQueryConformance", "build_dataset"]

PROJECT_A = "proj_a"
PROJECT_B = "proj_b"
DEPLOY_A1 = "dep_a1"
DEPLOY_A2 = "dep_a2"
DEPLOY_B = "dep_b"


@dataclass
class ObservabilityDataset:
    """The events the suite loads, and what they add up to."""

    base: datetime
    spans: list[Span] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)

    def events(self, *, with_traces: bool) -> list[ObservabilityEvent]:
        found: list[ObservabilityEvent] = [*self.spans, *self.logs, *self.metrics]
        found += [*self.scores, *self.feedback]
        if with_traces:
            found += self.traces
        return found

    def roots(self) -> list[Span]:
        return [s for s in self.spans if s.is_root]


def build_dataset(base: datetime | None = None) -> ObservabilityDataset:
    """Deterministic events over four hours from ``base`` (default: five hours ago,
    on the hour): hour 0 holds ten traces of project A's first deployment (durations
    10 … 100 ms, traces 3 and 7 failed), hour 1 nothing, hour 2 five traces of its
    second deployment (200 … 600 ms, one failed), hour 3 four traces of project B."""
    if base is None:
        base = (datetime.now(UTC) - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    data = ObservabilityDataset(base=base)
    plan: list[tuple[str, str, int, int, float, float, set[int]]] = [
        # project, deployment, hour, count, first duration, step (ms), failed indexes
        (PROJECT_A, DEPLOY_A1, 0, 10, 10.0, 10.0, {3, 7}),
        (PROJECT_A, DEPLOY_A2, 2, 5, 200.0, 100.0, {1}),
        (PROJECT_B, DEPLOY_B, 3, 4, 50.0, 10.0, set()),
    ]
    number = 0
    for project, deployment, hour, count, first, step, failed in plan:
        for i in range(count):
            number += 1
            trace_id = f"trace-{number:03d}"
            start = base + timedelta(hours=hour, minutes=2 * i + 1)
            duration = first + step * i
            error = i in failed
            status = SpanStatus.ERROR if error else SpanStatus.OK
            root = Span(
                project_id=project,
                deployment_id=deployment,
                trace_id=trace_id,
                span_id=f"{trace_id}-root",
                name=f"agent run {number}",
                span_type="agent_run",
                status=status,
                entity_type="agent",
                entity_id="support-agent",
                entity_name="Support agent",
                start_time=start,
                end_time=start + timedelta(milliseconds=duration),
                duration_ms=duration,
                is_root=True,
                attributes={"model": "gpt-x", "attempt": i},
                metadata={"runId": f"run-{number}"},
                input={"question": f"question {number}"},
                output={"answer": f"answer {number}"} if not error else None,
                error={"message": f"failure {number}"} if error else None,
                events=[{"name": "started", "at": i}],
            )
            tool = Span(
                project_id=project,
                deployment_id=deployment,
                trace_id=trace_id,
                span_id=f"{trace_id}-tool",
                parent_span_id=root.span_id,
                name="tool call: lookup",
                span_type="tool_call",
                status=SpanStatus.OK,
                start_time=start + timedelta(milliseconds=1),
                end_time=start + timedelta(milliseconds=3),
                duration_ms=2.0,
            )
            model = Span(
                project_id=project,
                deployment_id=deployment,
                trace_id=trace_id,
                span_id=f"{trace_id}-model",
                parent_span_id=root.span_id,
                name="model generation",
                span_type="model_generation",
                status=status,
                start_time=start + timedelta(milliseconds=4),
                end_time=start + timedelta(milliseconds=5),
                duration_ms=1.0,
            )
            fetch = Span(
                project_id=project,
                deployment_id=deployment,
                trace_id=trace_id,
                span_id=f"{trace_id}-fetch",
                parent_span_id=tool.span_id,
                name="http fetch",
                span_type="generic",
                status=SpanStatus.OK,
                start_time=start + timedelta(milliseconds=2),
                end_time=start + timedelta(milliseconds=3),
                duration_ms=1.0,
            )
            data.spans += [root, tool, model, fetch]
            data.traces.append(
                Trace(
                    project_id=project,
                    deployment_id=deployment,
                    trace_id=trace_id,
                    name=root.name,
                    status=status,
                    start_time=root.start_time,
                    end_time=root.end_time,
                    duration_ms=duration,
                    input=root.input,
                    output=root.output,
                    metadata=root.metadata,
                )
            )
            data.logs.append(
                Log(
                    project_id=project,
                    deployment_id=deployment,
                    id=f"log-{number:03d}-info",
                    level=LogLevel.INFO,
                    message=f"Handled request {number}",
                    timestamp=start + timedelta(milliseconds=1),
                    trace_id=trace_id,
                    span_id=root.span_id,
                    attributes={"path": "/chat", "n": number},
                )
            )
            if error:
                data.logs.append(
                    Log(
                        project_id=project,
                        deployment_id=deployment,
                        id=f"log-{number:03d}-error",
                        level=LogLevel.ERROR,
                        message=f"Request {number} failed: upstream timeout",
                        timestamp=start + timedelta(milliseconds=2),
                        trace_id=trace_id,
                        span_id=model.span_id,
                    )
                )
            data.metrics.append(
                Metric(
                    project_id=project,
                    deployment_id=deployment,
                    id=f"metric-{number:03d}",
                    name="request_duration_ms",
                    type="histogram",
                    value=duration,
                    timestamp=start + timedelta(milliseconds=3),
                    labels={"route": "/chat", "status": status.value},
                    trace_id=trace_id,
                )
            )
            if project == PROJECT_A:
                data.scores.append(
                    Score(
                        project_id=project,
                        deployment_id=deployment,
                        id=f"score-{number:03d}",
                        name="relevancy",
                        value=round(0.1 * (i + 1), 2),
                        timestamp=start + timedelta(milliseconds=6),
                        trace_id=trace_id,
                        span_id=root.span_id,
                        scorer="relevancy-v1",
                        reason=f"reason {number}",
                        metadata={"model": "judge"},
                    )
                )
    data.logs += [
        Log(
            project_id=PROJECT_A,
            deployment_id=DEPLOY_A1,
            id="log-debug",
            level=LogLevel.DEBUG,
            message="cache warm",
            timestamp=base + timedelta(minutes=30),
        ),
        Log(
            project_id=PROJECT_A,
            deployment_id=DEPLOY_A1,
            id="log-warn",
            level=LogLevel.WARN,
            message="No storage configured: falling back to memory",
            timestamp=base + timedelta(minutes=31),
        ),
        Log(
            project_id=PROJECT_B,
            deployment_id=DEPLOY_B,
            id="log-fatal",
            level=LogLevel.FATAL,
            message="Out of memory",
            timestamp=base + timedelta(hours=3, minutes=30),
        ),
    ]
    data.metrics.append(
        Metric(
            project_id=PROJECT_A,
            deployment_id=DEPLOY_A1,
            id="metric-requests",
            name="requests_total",
            type="counter",
            value=10,
            timestamp=base + timedelta(minutes=59),
        )
    )
    data.feedback += [
        Feedback(
            project_id=PROJECT_A,
            deployment_id=DEPLOY_A1,
            id="feedback-1",
            timestamp=base + timedelta(minutes=40),
            trace_id="trace-001",
            source="user",
            feedback_type="thumbs",
            value=1,
            comment="nice",
            user_id="user-42",
        ),
        Feedback(
            project_id=PROJECT_A,
            deployment_id=DEPLOY_A1,
            id="feedback-2",
            timestamp=base + timedelta(minutes=41),
            trace_id="trace-004",
            source="user",
            feedback_type="thumbs",
            value=-1,
            comment="wrong answer",
        ),
        Feedback(
            project_id=PROJECT_A,
            deployment_id=DEPLOY_A1,
            id="feedback-3",
            timestamp=base + timedelta(minutes=42),
            trace_id="trace-004",
            source="reviewer",
            feedback_type="rating",
            value={"stars": 2},
        ),
    ]
    return data


def _near(actual: float | None, expected: float, tolerance: float) -> bool:
    return actual is not None and math.isclose(actual, expected, rel_tol=tolerance)


class ObservabilityQueryConformance:
    """The contract of ``mastra_admin.core.observability.ObservabilityQueryProvider``."""

    __test__ = False

    derives_traces_from_spans: ClassVar[bool] = True
    percentile_tolerance: ClassVar[float] = 0.15

    @pytest.fixture
    async def backend(self) -> AsyncIterator[ObservabilityBackend]:
        raise NotImplementedError("override the backend fixture")
        return  # pragma: no cover

    async def ingest(
        self, backend: ObservabilityBackend, events: Sequence[ObservabilityEvent], folder: Path
    ) -> None:
        """Load ``events`` into ``backend`` and return once they can be queried."""
        from mastra_admin.core.local_file_storage import LocalFileStorage
        from mastra_admin.core.observability_writer import ObservabilityWriter

        storage = LocalFileStorage(folder)
        writer = ObservabilityWriter(storage, batch_size=10_000)
        await writer.record_events(events)
        await writer.flush()
        worker = backend.ingestion_worker(storage)
        for _ in range(20):
            result = await worker.process_once()
            assert not result.errors, result.errors
            if result.files_processed == 0:
                break
        await worker.stop()

    @pytest.fixture
    async def dataset(self, backend: ObservabilityBackend, tmp_path: Path) -> ObservabilityDataset:
        data = build_dataset()
        events = data.events(with_traces=not self.derives_traces_from_spans)
        await self.ingest(backend, events, tmp_path / "conformance-files")
        return data

    # --- traces -----------------------------------------------------------------

    async def test_an_empty_backend_lists_nothing(self, backend: ObservabilityBackend) -> None:
        page = await backend.query.list_traces(TraceQuery())
        assert page.items == []
        assert page.total == 0
        assert await backend.query.get_trace("no-such-trace") is None
        assert (await backend.query.list_logs(LogQuery())).total == 0

    async def test_traces_are_listed_newest_first_with_their_fields(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        page = await backend.query.list_traces(TraceQuery(limit=100))
        expected = sorted(dataset.traces, key=lambda t: t.start_time, reverse=True)
        assert [t.trace_id for t in page.items] == [t.trace_id for t in expected]
        assert page.total == len(expected)
        got = {t.trace_id: t for t in page.items}
        for want in expected:
            trace = got[want.trace_id]
            assert trace.project_id == want.project_id
            assert trace.deployment_id == want.deployment_id
            assert trace.name == want.name
            assert trace.status == want.status
            assert trace.start_time == want.start_time
            assert trace.end_time == want.end_time
            assert trace.duration_ms == pytest.approx(want.duration_ms)
            assert trace.input == want.input
            assert trace.metadata == want.metadata
            assert trace.span_count in (None, 4)

    async def test_traces_filter_by_project_deployment_status_name_and_id(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        query = backend.query

        def ids(traces: Sequence[Trace]) -> set[str]:
            return {t.trace_id for t in traces}

        by_project = await query.list_traces(TraceQuery(project_id=PROJECT_A, limit=100))
        assert ids(by_project.items) == ids(
            [t for t in dataset.traces if t.project_id == PROJECT_A]
        )
        by_deployment = await query.list_traces(TraceQuery(deployment_id=DEPLOY_A2, limit=100))
        assert by_deployment.total == 5
        failed = await query.list_traces(TraceQuery(status=SpanStatus.ERROR, limit=100))
        assert ids(failed.items) == {"trace-004", "trace-008", "trace-012"}
        named = await query.list_traces(TraceQuery(name="agent run 1", limit=100))
        assert ids(named.items) == {
            "trace-001",
            "trace-010",
            "trace-011",
            "trace-012",
            "trace-013",
            "trace-014",
            "trace-015",
            "trace-016",
            "trace-017",
            "trace-018",
            "trace-019",
        }
        one = await query.list_traces(TraceQuery(trace_id="trace-005"))
        assert ids(one.items) == {"trace-005"}
        nothing = await query.list_traces(TraceQuery(project_id=PROJECT_B, deployment_id=DEPLOY_A1))
        assert nothing.items == []
        assert nothing.total == 0

    async def test_traces_filter_by_time_range(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        start = dataset.base + timedelta(hours=2)
        end = dataset.base + timedelta(hours=3)
        page = await backend.query.list_traces(TraceQuery(start=start, end=end, limit=100))
        want = {t.trace_id for t in dataset.traces if start <= t.start_time <= end}
        assert {t.trace_id for t in page.items} == want
        assert len(want) == 5

    async def test_trace_pages_cover_every_trace_once(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        seen: list[str] = []
        offset = 0
        while True:
            page = await backend.query.list_traces(TraceQuery(limit=4, offset=offset))
            assert page.total == len(dataset.traces)
            assert len(page.items) <= 4
            seen += [t.trace_id for t in page.items]
            if not page.has_more:
                break
            offset += 4
        assert len(seen) == len(set(seen)) == len(dataset.traces)
        beyond = await backend.query.list_traces(TraceQuery(limit=4, offset=100))
        assert beyond.items == []
        assert beyond.total == len(dataset.traces)

    async def test_a_trace_comes_back_as_a_tree(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        tree = await backend.query.get_trace("trace-004")
        assert tree is not None
        assert tree.trace.trace_id == "trace-004"
        assert tree.trace.status == SpanStatus.ERROR
        assert tree.trace.span_count in (None, 4)
        assert tree.roots == ["trace-004-root"]
        assert tree.children["trace-004-root"] == ["trace-004-tool", "trace-004-model"]
        assert tree.children["trace-004-tool"] == ["trace-004-fetch"]
        assert {s.span_id for s in tree.spans} == {
            "trace-004-root",
            "trace-004-tool",
            "trace-004-model",
            "trace-004-fetch",
        }
        want = next(s for s in dataset.spans if s.span_id == "trace-004-root")
        root = next(s for s in tree.spans if s.span_id == "trace-004-root")
        assert root.is_root
        assert root.parent_span_id is None
        assert root.name == want.name
        assert root.span_type == want.span_type
        assert root.entity_type == want.entity_type
        assert root.entity_id == want.entity_id
        assert root.entity_name == want.entity_name
        assert root.start_time == want.start_time
        assert root.end_time == want.end_time
        assert root.duration_ms == pytest.approx(want.duration_ms)
        assert root.attributes == want.attributes
        assert root.metadata == want.metadata
        assert root.input == want.input
        assert root.output == want.output
        assert root.error == want.error
        assert root.events == want.events

    async def test_a_trace_is_found_only_in_its_project(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        assert await backend.query.get_trace("trace-001", project_id=PROJECT_A) is not None
        assert await backend.query.get_trace("trace-001", project_id=PROJECT_B) is None
        assert await backend.query.get_trace("trace-999") is None

    # --- spans ------------------------------------------------------------------

    async def test_spans_filter_and_page(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        query = backend.query
        everything = await query.list_spans(SpanQuery(limit=1000))
        assert everything.total == len(dataset.spans)
        starts = [s.start_time for s in everything.items]
        assert starts == sorted(starts, reverse=True)
        of_trace = await query.list_spans(SpanQuery(trace_id="trace-002", limit=100))
        assert {s.span_id for s in of_trace.items} == {
            f"trace-002-{p}" for p in ("root", "tool", "model", "fetch")
        }
        children = await query.list_spans(
            SpanQuery(trace_id="trace-002", parent_span_id="trace-002-root")
        )
        assert {s.span_id for s in children.items} == {"trace-002-tool", "trace-002-model"}
        tools = await query.list_spans(SpanQuery(span_type="tool_call", limit=100))
        assert tools.total == len(dataset.traces)
        failed = await query.list_spans(
            SpanQuery(status=SpanStatus.ERROR, project_id=PROJECT_A, limit=100)
        )
        assert {s.trace_id for s in failed.items} == {"trace-004", "trace-008", "trace-012"}
        assert failed.total == 6
        named = await query.list_spans(SpanQuery(name="http fetch", deployment_id=DEPLOY_B))
        assert named.total == 4
        first = await query.list_spans(SpanQuery(limit=7))
        second = await query.list_spans(SpanQuery(limit=7, offset=7))
        assert len(first.items) == len(second.items) == 7
        assert not {s.span_id for s in first.items} & {s.span_id for s in second.items}

    # --- logs -------------------------------------------------------------------

    async def test_logs_newest_first_filtered_by_level_text_and_ids(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        query = backend.query
        everything = await query.list_logs(LogQuery(limit=1000))
        assert everything.total == len(dataset.logs)
        times = [log.timestamp for log in everything.items]
        assert times == sorted(times, reverse=True)
        warn_up = await query.list_logs(LogQuery(level=LogLevel.WARN, limit=100))
        want = {
            log.id
            for log in dataset.logs
            if log.level in (LogLevel.WARN, LogLevel.ERROR, LogLevel.FATAL)
        }
        assert {log.id for log in warn_up.items} == want
        errors = await query.list_logs(
            LogQuery(level=LogLevel.ERROR, project_id=PROJECT_A, deployment_id=DEPLOY_A1)
        )
        assert {log.id for log in errors.items} == {"log-004-error", "log-008-error"}
        text = await query.list_logs(LogQuery(text="upstream timeout", limit=100))
        assert {log.id for log in text.items} == {
            "log-004-error",
            "log-008-error",
            "log-012-error",
        }
        by_trace = await query.list_logs(LogQuery(trace_id="trace-008"))
        assert {log.id for log in by_trace.items} == {"log-008-info", "log-008-error"}
        by_span = await query.list_logs(LogQuery(span_id="trace-008-model"))
        assert [log.id for log in by_span.items] == ["log-008-error"]
        one = next(log for log in everything.items if log.id == "log-002-info")
        want_log = next(log for log in dataset.logs if log.id == "log-002-info")
        assert one.message == want_log.message
        assert one.level == LogLevel.INFO
        assert one.timestamp == want_log.timestamp
        assert one.project_id == PROJECT_A
        assert one.deployment_id == DEPLOY_A1
        assert one.trace_id == "trace-002"
        assert one.span_id == "trace-002-root"
        assert one.attributes == want_log.attributes

    async def test_logs_filter_by_time_and_page(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        start = dataset.base + timedelta(minutes=30)
        end = dataset.base + timedelta(minutes=31)
        window = await backend.query.list_logs(LogQuery(start=start, end=end))
        assert {log.id for log in window.items} == {"log-debug", "log-warn"}
        seen: list[str] = []
        for offset in range(0, len(dataset.logs), 5):
            page = await backend.query.list_logs(LogQuery(limit=5, offset=offset))
            seen += [log.id for log in page.items]
        assert sorted(seen) == sorted(log.id for log in dataset.logs)

    # --- metrics, scores, feedback ----------------------------------------------

    async def test_metrics_filter_by_name_and_keep_their_fields(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        page = await backend.query.list_metrics(
            MetricQuery(name="request_duration_ms", project_id=PROJECT_A, limit=100)
        )
        assert page.total == 15
        times = [m.timestamp for m in page.items]
        assert times == sorted(times, reverse=True)
        got = next(m for m in page.items if m.id == "metric-003")
        want = next(m for m in dataset.metrics if m.id == "metric-003")
        assert got.value == pytest.approx(want.value)
        assert got.type == "histogram"
        assert got.labels == want.labels
        assert got.trace_id == want.trace_id
        assert got.timestamp == want.timestamp
        counters = await backend.query.list_metrics(MetricQuery(name="requests_total"))
        assert [(m.id, m.type, m.value) for m in counters.items] == [
            ("metric-requests", "counter", 10.0)
        ]

    async def test_scores_filter_by_name_trace_and_value(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        query = backend.query
        everything = await query.list_scores(ScoreQuery(name="relevancy", limit=100))
        assert everything.total == len(dataset.scores)
        high = await query.list_scores(ScoreQuery(min_value=0.45, max_value=0.75, limit=100))
        assert sorted(s.value for s in high.items) == pytest.approx([0.5, 0.5, 0.6, 0.7])
        of_trace = await query.list_scores(ScoreQuery(trace_id="trace-003"))
        assert len(of_trace.items) == 1
        score = of_trace.items[0]
        want = next(s for s in dataset.scores if s.trace_id == "trace-003")
        assert score.id == want.id
        assert score.value == pytest.approx(want.value)
        assert score.scorer == want.scorer
        assert score.reason == want.reason
        assert score.span_id == want.span_id
        assert score.timestamp == want.timestamp
        assert score.metadata.items() >= want.metadata.items()

    async def test_feedback_filters_by_trace_and_type(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        query = backend.query
        everything = await query.list_feedback(FeedbackQuery())
        assert [f.id for f in everything.items] == ["feedback-3", "feedback-2", "feedback-1"]
        of_trace = await query.list_feedback(FeedbackQuery(trace_id="trace-004"))
        assert {f.id for f in of_trace.items} == {"feedback-2", "feedback-3"}
        thumbs = await query.list_feedback(FeedbackQuery(feedback_type="thumbs"))
        assert {f.id for f in thumbs.items} == {"feedback-1", "feedback-2"}
        rating = next(f for f in everything.items if f.id == "feedback-3")
        assert rating.value == {"stars": 2}
        assert rating.source == "reviewer"
        first = next(f for f in everything.items if f.id == "feedback-1")
        assert first.value == 1
        assert first.comment == "nice"
        assert first.user_id == "user-42"

    # --- time series ------------------------------------------------------------

    async def test_hourly_series_has_every_bucket_with_counts_errors_and_latency(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        series = await backend.query.time_series(
            TimeSeriesQuery(
                start=dataset.base, end=dataset.base + timedelta(hours=4), interval_s=3600
            )
        )
        assert [b.start for b in series] == [dataset.base + timedelta(hours=h) for h in range(4)]
        assert [b.count for b in series] == [10, 0, 5, 4]
        assert [b.errors for b in series] == [2, 0, 1, 0]
        assert series[0].error_rate == pytest.approx(0.2)
        assert series[1].error_rate == 0.0
        assert series[2].error_rate == pytest.approx(0.2)
        assert series[1].p50_ms is None
        assert series[1].p95_ms is None
        tolerance = self.percentile_tolerance
        assert _near(series[0].p50_ms, 55.0, tolerance), series[0].p50_ms
        assert _near(series[0].p95_ms, 95.5, tolerance), series[0].p95_ms
        assert _near(series[2].p50_ms, 400.0, tolerance), series[2].p50_ms

    async def test_a_series_of_one_project_in_short_intervals(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        start = dataset.base + timedelta(minutes=1)
        series = await backend.query.time_series(
            TimeSeriesQuery(
                project_id=PROJECT_A,
                deployment_id=DEPLOY_A1,
                start=start,
                end=start + timedelta(minutes=20),
                interval_s=300,
            )
        )
        assert len(series) == 4
        assert [b.count for b in series] == [3, 2, 3, 2]
        assert sum(b.errors for b in series) == 2
        spans = await backend.query.time_series(
            TimeSeriesQuery(
                project_id=PROJECT_B,
                start=dataset.base,
                end=dataset.base + timedelta(hours=4),
                interval_s=7200,
                signal="spans",
            )
        )
        assert [b.count for b in spans] == [0, 16]

    async def test_a_log_series_counts_errors_and_fatals(
        self, backend: ObservabilityBackend, dataset: ObservabilityDataset
    ) -> None:
        series = await backend.query.time_series(
            TimeSeriesQuery(
                start=dataset.base,
                end=dataset.base + timedelta(hours=4),
                interval_s=3600,
                signal="logs",
            )
        )
        assert [b.count for b in series] == [14, 0, 6, 5]
        assert [b.errors for b in series] == [2, 0, 1, 1]
        assert all(b.p50_ms is None for b in series)
