"""Reading events back: paginated lists with filters, one trace as a tree, time series.

Ingestion is exactly-once per batch, but the same span can still arrive twice: a
server's exporter retries a batch it believes lost (up to three times), or a span
comes from two sources. The replacing tables hold every copy until a merge collapses
them, which may come late or never, so the lists of traces and spans read each event
once by their own means, whatever the merge state: the page keeps the latest copy of
each (``LIMIT 1 BY`` the table's key, ``ingested_at`` last), the total counts
``FINAL``, and a trace's spans are counted from a set of their ids. A trace is looked
up by id through the bloom-filter index, then its spans by their primary key, the
latest copy of each kept. A page of traces is read backwards along the traces' key
(project, start time), so the newest page reads a few granules at the end of the
project's range. Hour-aligned time series read the hourly views; others the raw table.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog

from mastra_admin.core.events import Feedback, Log, Metric, Score, Span, Trace, TraceTree
from mastra_admin.core.models import Page
from mastra_admin.core.observability import (
    FeedbackQuery,
    LogQuery,
    MetricQuery,
    ObservabilityQueryProvider,
    ScoreQuery,
    SpanQuery,
    TimeBucket,
    TimeSeriesQuery,
    TraceQuery,
)
from mastra_admin.observability.clickhouse._schema import (
    FEEDBACK,
    HOURLY_VIEWS,
    LOGS,
    METRICS,
    SCORES,
    SPAN_IDS,
    SPANS,
    TRACES,
)
from mastra_admin.observability.clickhouse._sql import Statement, Where
from mastra_admin.observability.clickhouse._transport import Row, Transport

__all__ = ["ClickHouseQueryProvider", "LatestPage", "QueryBuilder"]

_log = structlog.get_logger("mastra_admin.observability.clickhouse")

T = TypeVar("T")

_LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3, "fatal": 4}

_TRACE_COLUMNS = (
    "trace_id, project_id, deployment_id, name, toString(status) AS status, "
    "toUnixTimestamp64Milli(start_time) AS start_ms, toUnixTimestamp64Milli(end_time) AS end_ms, "
    "duration_ms, input, output, metadata, root_span_id, "
    "toUnixTimestamp64Milli(ingested_at) AS ingested_ms"
)
_SPAN_COLUMNS = (
    "trace_id, span_id, parent_span_id, project_id, deployment_id, name, span_type, "
    "toString(kind) AS kind, toString(status) AS status, entity_type, entity_id, entity_name, "
    "toUnixTimestamp64Milli(start_time) AS start_ms, toUnixTimestamp64Milli(end_time) AS end_ms, "
    "duration_ms, is_root, attributes, metadata, input, output, error, events, "
    "toUnixTimestamp64Milli(ingested_at) AS ingested_ms"
)
_LOG_COLUMNS = (
    "id, project_id, deployment_id, trace_id, span_id, toString(level) AS level, message, "
    "toUnixTimestamp64Milli(timestamp) AS ts_ms, source, attributes"
)
_METRIC_COLUMNS = (
    "id, project_id, deployment_id, name, toString(type) AS type, value, unit, "
    "toUnixTimestamp64Milli(timestamp) AS ts_ms, labels, trace_id, span_id, metadata"
)
_SCORE_COLUMNS = (
    "id, project_id, deployment_id, trace_id, span_id, name, value, scorer, reason, "
    "toUnixTimestamp64Milli(timestamp) AS ts_ms, metadata"
)
_FEEDBACK_COLUMNS = (
    "id, project_id, deployment_id, trace_id, span_id, source, feedback_type, value, comment, "
    "user_id, toUnixTimestamp64Milli(timestamp) AS ts_ms, metadata"
)


def _moment(ms: Any) -> datetime | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def _json(text: Any, default: Any, *, field: str) -> Any:
    """A JSON column's value; a malformed one is logged and read as ``default``."""
    if text is None or text == "":
        return default
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        _log.warning("clickhouse.bad_json_column", field=field)
        return default
    if isinstance(default, dict) and not isinstance(value, dict):
        _log.warning("clickhouse.bad_json_column", field=field)
        return default
    if isinstance(default, list) and not isinstance(value, list):
        _log.warning("clickhouse.bad_json_column", field=field)
        return default
    return value


def _raw(text: Any) -> Any:
    """An ``input``/``output``/``value`` column: any JSON value, None when absent."""
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def trace_from_row(row: Row) -> Trace:
    start = _moment(row["start_ms"])
    assert start is not None
    return Trace(
        trace_id=row["trace_id"],
        project_id=row["project_id"],
        deployment_id=row["deployment_id"],
        name=row["name"],
        status=row["status"],
        start_time=start,
        end_time=_moment(row["end_ms"]),
        duration_ms=_float(row["duration_ms"]),
        input=_raw(row["input"]),
        output=_raw(row["output"]),
        metadata=_json(row["metadata"], {}, field="traces.metadata"),
    )


def span_from_row(row: Row) -> Span:
    start = _moment(row["start_ms"])
    assert start is not None
    return Span(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"] or None,
        project_id=row["project_id"],
        deployment_id=row["deployment_id"],
        name=row["name"],
        span_type=row["span_type"],
        kind=row["kind"],
        status=row["status"],
        entity_type=row["entity_type"],
        entity_id=row["entity_id"],
        entity_name=row["entity_name"],
        start_time=start,
        end_time=_moment(row["end_ms"]),
        duration_ms=_float(row["duration_ms"]),
        is_root=_bool(row["is_root"]),
        attributes=_json(row["attributes"], {}, field="spans.attributes"),
        metadata=_json(row["metadata"], {}, field="spans.metadata"),
        input=_raw(row["input"]),
        output=_raw(row["output"]),
        error=_json(row["error"], None, field="spans.error") if row["error"] else None,
        events=_json(row["events"], [], field="spans.events"),
    )


def log_from_row(row: Row) -> Log:
    ts = _moment(row["ts_ms"])
    assert ts is not None
    return Log(
        id=row["id"],
        project_id=row["project_id"],
        deployment_id=row["deployment_id"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        level=row["level"],
        message=row["message"],
        timestamp=ts,
        source=row["source"],
        attributes=_json(row["attributes"], {}, field="logs.attributes"),
    )


def metric_from_row(row: Row) -> Metric:
    ts = _moment(row["ts_ms"])
    assert ts is not None
    labels = _json(row["labels"], {}, field="metrics.labels")
    return Metric(
        id=row["id"],
        project_id=row["project_id"],
        deployment_id=row["deployment_id"],
        name=row["name"],
        type=row["type"],
        value=float(row["value"]),
        timestamp=ts,
        labels={str(k): v if isinstance(v, str) else json.dumps(v) for k, v in labels.items()},
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        metadata=_json(row["metadata"], {}, field="metrics.metadata"),
    )


def score_from_row(row: Row) -> Score:
    ts = _moment(row["ts_ms"])
    assert ts is not None
    return Score(
        id=row["id"],
        project_id=row["project_id"],
        deployment_id=row["deployment_id"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        name=row["name"],
        value=float(row["value"]),
        scorer=row["scorer"],
        reason=row["reason"],
        timestamp=ts,
        metadata=_json(row["metadata"], {}, field="scores.metadata"),
    )


def feedback_from_row(row: Row) -> Feedback:
    ts = _moment(row["ts_ms"])
    assert ts is not None
    return Feedback(
        id=row["id"],
        project_id=row["project_id"],
        deployment_id=row["deployment_id"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        source=row["source"],
        feedback_type=row["feedback_type"],
        value=_raw(row["value"]),
        comment=row["comment"],
        user_id=row["user_id"],
        timestamp=ts,
        metadata=_json(row["metadata"], {}, field="feedback.metadata"),
    )


_WINDOW_COPIES = 4
"""How many copies of each event a page's window makes room for: the exporter sends a
batch at most four times (three retries)."""

_FINAL_COUNT = "SETTINGS do_not_merge_across_partitions_select_final = 1"
"""Copies of an event share its start time and so its partition (the month of its
start time): ``FINAL`` merges each partition alone. (Copies in two months, were a
span sent again with another start time, would count twice: merges never collapse
them either.)"""


@dataclass(frozen=True)
class LatestPage:
    """A page of a replacing table (traces, spans) with the latest copy of each event.

    ``count`` counts the events once (``FINAL``: ClickHouse merges only the key ranges
    of parts that overlap, which for the traces' time-ordered key is the newest few
    granules). ``window`` reads the newest ``window_rows`` rows as a page without
    copies would, in the order of the page (backwards along the traces' key, reading
    the wide columns of those rows only), then keeps the latest copy of each event and
    returns up to ``limit + 1`` of them, with ``_window_rows``, the rows it read.
    ClickHouse stops reading early, and reads the wide columns of the rows it keeps
    only, for a plain ``LIMIT``, not for a ``LIMIT 1 BY``: over 5M spans, one over the
    whole table sorted every span of the project (1.0-1.4 s instead of 0.1 s) and read
    every column of the traces along the key in blocks of 65,536 rows (70 ms instead
    of 15 ms), where the window takes 2 ms more than the page did.

    The window holds the page when it found one event more than the page (the copies
    of the events before it are then all inside, as copies are next to each other in
    the order) or fewer rows than it asked for (every row). Otherwise copies filled
    it, and ``full`` reads the page with ``LIMIT 1 BY`` over the whole table.

    Filters apply to each row before its copies are told apart, and ``FINAL`` applies
    those on other columns than the key to the latest copy: copies that differ in a
    filtered column (never those of a retried batch) may be listed and counted apart."""

    count: Statement
    window: Statement
    window_rows: int
    full: Statement

    def holds_page(self, rows: list[Row], limit: int) -> bool:
        """Whether ``rows`` of the window are the page (its first ``limit``)."""
        if len(rows) > limit:
            return True
        return bool(rows) and int(rows[0]["_window_rows"]) < self.window_rows


TWIN_WINDOW_S = 5
"""How far apart (seconds, at most twice this) a server's printed record and its
exported copy may be stamped and still be taken for one record."""
_OUTPUT_SOURCES = "'stdout', 'stderr', 'runtime'"
"""Sources of records read from a server's captured output (not from an exporter)."""


class QueryBuilder:
    """The statements the query provider runs (pure: no I/O, unit-tested as such)."""

    def __init__(self, database: str) -> None:
        self.db = database

    def _scope(self, w: Where, query: Any, time_column: str) -> None:
        w.equals("project_id", query.project_id)
        w.equals("deployment_id", query.deployment_id)
        w.since(time_column, query.start)
        w.until(time_column, query.end)

    def _page(
        self, table: str, columns: str, w: Where, order: str, limit: int, offset: int
    ) -> tuple[Statement, Statement]:
        where = w.sql()
        count = Statement(f"SELECT count() AS total FROM {self.db}.{table} {where}", w.params)
        page_params = dict(w.params)
        page_params.update({"_limit": limit, "_offset": offset})
        rows = Statement(
            f"SELECT {columns} FROM {self.db}.{table} {where} ORDER BY {order} "
            "LIMIT {_limit:UInt32} OFFSET {_offset:UInt32}",
            page_params,
        )
        return count, rows

    def _latest_page(
        self,
        table: str,
        columns: str,
        w: Where,
        order: str,
        key: str,
        limit: int,
        offset: int,
    ) -> LatestPage:
        """A page of ``table`` in ``order``, each event once: the latest copy (by
        ``ingested_at``) of the rows sharing ``key``, the table's sorting key."""
        where = w.sql()
        table = f"{self.db}.{table}"
        count = Statement(
            f"SELECT count() AS total FROM {table} FINAL {where} {_FINAL_COUNT}", w.params
        )
        window_rows = _WINDOW_COPIES * (offset + limit + 1)
        params = dict(w.params)
        params.update({"_limit": limit, "_offset": offset})
        latest = f"ORDER BY {order}, ingested_at DESC LIMIT 1 BY {key}"
        window = Statement(
            f"SELECT {columns}, count() OVER () AS _window_rows "
            f"FROM (SELECT * FROM {table} {where} ORDER BY {order} LIMIT {{_window:UInt32}}) "
            f"{latest} LIMIT {{_more:UInt32}} OFFSET {{_offset:UInt32}}",
            {**params, "_window": window_rows, "_more": limit + 1},
        )
        full = Statement(
            f"SELECT {columns} FROM {table} {where} {latest} "
            "LIMIT {_limit:UInt32} OFFSET {_offset:UInt32}",
            params,
        )
        return LatestPage(count, window, window_rows, full)

    def traces(self, q: TraceQuery) -> LatestPage:
        w = Where()
        self._scope(w, q, "start_time")
        w.equals("trace_id", q.trace_id)
        w.equals("status", q.status.value if q.status else None)
        w.contains("name", q.name)
        # Backwards along the table's key (project, start_time, trace_id): the newest
        # page is read from the end of the project's range, not sorted from all of it.
        return self._latest_page(
            TRACES,
            _TRACE_COLUMNS,
            w,
            "start_time DESC, trace_id DESC",
            "project_id, start_time, trace_id",
            q.limit,
            q.offset,
        )

    def span_counts(self, trace_ids: list[str], project_ids: list[str]) -> Statement:
        """Distinct spans per trace, from the sets of span ids a view keeps (their key
        starts with the project): a span stored twice counts once."""
        w = Where()
        w.in_array("project_id", sorted(set(project_ids)))
        w.in_array("trace_id", trace_ids)
        return Statement(
            f"SELECT trace_id, uniqExactMerge(span_ids) AS spans FROM {self.db}.{SPAN_IDS} "
            f"{w.sql()} GROUP BY trace_id",
            w.params,
        )

    def trace_rows(self, trace_id: str, project_id: str | None) -> Statement:
        w = Where()
        w.equals("trace_id", trace_id)
        w.equals("project_id", project_id)
        return Statement(
            f"SELECT {_TRACE_COLUMNS} FROM {self.db}.{TRACES} {w.sql()} "
            "ORDER BY ingested_at DESC LIMIT 1",
            w.params,
        )

    def trace_spans(
        self, trace_id: str, project_id: str | None, deployment_id: str | None
    ) -> Statement:
        w = Where()
        w.equals("project_id", project_id)
        w.equals("deployment_id", deployment_id)
        w.equals("trace_id", trace_id)
        return Statement(
            f"SELECT {_SPAN_COLUMNS} FROM {self.db}.{SPANS} {w.sql()} "
            "ORDER BY start_time, span_id LIMIT 100000",
            w.params,
        )

    def spans(self, q: SpanQuery) -> LatestPage:
        w = Where()
        self._scope(w, q, "start_time")
        w.equals("trace_id", q.trace_id)
        w.equals("parent_span_id", q.parent_span_id)
        w.equals("span_type", q.span_type)
        w.equals("status", q.status.value if q.status else None)
        w.contains("name", q.name)
        return self._latest_page(
            SPANS,
            _SPAN_COLUMNS,
            w,
            "start_time DESC, span_id",
            "project_id, deployment_id, trace_id, span_id",
            q.limit,
            q.offset,
        )

    def logs(self, q: LogQuery) -> tuple[Statement, Statement]:
        w = Where()
        self._scope(w, q, "timestamp")
        if q.level is not None:
            floor = _LEVELS[q.level.value]
            w.one_of("toString(level)", [name for name, rank in _LEVELS.items() if rank >= floor])
        w.equals("trace_id", q.trace_id)
        w.equals("span_id", q.span_id)
        w.contains("message", q.text)
        self._without_exported_twins(w, q)
        # Ids of runtime records end in their line number: the same instant keeps
        # the order of the stream.
        return self._page(LOGS, _LOG_COLUMNS, w, "timestamp DESC, id DESC", q.limit, q.offset)

    def _without_exported_twins(self, w: Where, q: LogQuery) -> None:
        """Leave out a record of a server's output that also came through an
        exporter (same deployment, level and message, within ``TWIN_WINDOW_S``):
        the exporter's copy carries the trace ids. Records whose exporter copy was
        lost (the collector unreachable, say) stay."""
        scope = Where(prefix="t")
        scope.equals("project_id", q.project_id)
        scope.equals("deployment_id", q.deployment_id)
        pad = timedelta(seconds=2 * TWIN_WINDOW_S)
        scope.since("timestamp", q.start - pad if q.start is not None else None)
        scope.until("timestamp", q.end + pad if q.end is not None else None)
        scope.add(f"source NOT IN ({_OUTPUT_SOURCES})")
        w.params.update(scope.params)
        bucket = f"intDiv(toUnixTimestamp(timestamp), {TWIN_WINDOW_S})"
        w.add(
            f"(source NOT IN ({_OUTPUT_SOURCES}) OR (deployment_id, level, message, {bucket}) "
            f"NOT IN (SELECT deployment_id, level, message, arrayJoin([{bucket} - 1, {bucket}, "
            f"{bucket} + 1]) FROM {self.db}.{LOGS} {scope.sql()}))"
        )

    def metrics(self, q: MetricQuery) -> tuple[Statement, Statement]:
        w = Where()
        self._scope(w, q, "timestamp")
        w.equals("name", q.name)
        return self._page(METRICS, _METRIC_COLUMNS, w, "timestamp DESC, id", q.limit, q.offset)

    def scores(self, q: ScoreQuery) -> tuple[Statement, Statement]:
        w = Where()
        self._scope(w, q, "timestamp")
        w.equals("name", q.name)
        w.equals("trace_id", q.trace_id)
        w.at_least("value", q.min_value)
        w.at_most("value", q.max_value)
        return self._page(SCORES, _SCORE_COLUMNS, w, "timestamp DESC, id", q.limit, q.offset)

    def feedback(self, q: FeedbackQuery) -> tuple[Statement, Statement]:
        w = Where()
        self._scope(w, q, "timestamp")
        w.equals("trace_id", q.trace_id)
        w.equals("feedback_type", q.feedback_type)
        return self._page(FEEDBACK, _FEEDBACK_COLUMNS, w, "timestamp DESC, id", q.limit, q.offset)

    @staticmethod
    def uses_hourly_view(q: TimeSeriesQuery) -> bool:
        """Whole hours only: the views hold one row per hour."""

        def on_hour(moment: datetime) -> bool:
            return moment.minute == 0 and moment.second == 0 and moment.microsecond == 0

        return q.interval_s % 3600 == 0 and on_hour(q.start) and on_hour(q.end)

    def time_series(self, q: TimeSeriesQuery) -> Statement:
        w = Where()
        w.equals("project_id", q.project_id)
        w.equals("deployment_id", q.deployment_id)
        origin = w.param(int(_as_utc(q.start).timestamp() * 1000), "Int64")
        step = w.param(q.interval_s * 1000, "Int64")
        if self.uses_hourly_view(q):
            table = f"{self.db}.{HOURLY_VIEWS[_SIGNAL_TABLES[q.signal]]}_data"
            w.since("hour", q.start)
            w.until("hour", q.end, inclusive=False)
            bucket = f"intDiv(toInt64(toUnixTimestamp(hour)) * 1000 - {origin}, {step})"
            if q.signal == "logs":
                measures = (
                    "sum(count) AS events, sumIf(count, level IN ('error', 'fatal')) AS errors, "
                    "[nan, nan] AS q"
                )
            else:
                measures = (
                    "sum(count) AS events, sum(errors) AS errors, "
                    "quantilesTDigestMerge(0.5, 0.95)(duration_quantiles) AS q"
                )
        else:
            table = f"{self.db}.{_SIGNAL_TABLES[q.signal]}"
            column = "timestamp" if q.signal == "logs" else "start_time"
            w.since(column, q.start)
            w.until(column, q.end, inclusive=False)
            bucket = f"intDiv(toUnixTimestamp64Milli({column}) - {origin}, {step})"
            if q.signal == "logs":
                measures = (
                    "count() AS events, countIf(level IN ('error', 'fatal')) AS errors, "
                    "[nan, nan] AS q"
                )
            else:
                measures = (
                    "count() AS events, countIf(status = 'error') AS errors, "
                    "quantilesTDigestIf(0.5, 0.95)(assumeNotNull(duration_ms), "
                    "isNotNull(duration_ms)) AS q"
                )
        return Statement(
            f"SELECT {bucket} AS bucket, {measures} FROM {table} {w.sql()} "
            "GROUP BY bucket ORDER BY bucket",
            w.params,
        )


_SIGNAL_TABLES = {"traces": TRACES, "spans": SPANS, "logs": LOGS}


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class ClickHouseQueryProvider(ObservabilityQueryProvider):
    """The core's query provider over the tables of ``database``."""

    def __init__(self, transport: Transport, database: str) -> None:
        self.transport = transport
        self.build = QueryBuilder(database)

    async def _page(
        self, statements: tuple[Statement, Statement], convert: Callable[[Row], T], q: Any
    ) -> Page[T]:
        count, rows = statements
        totals = await self.transport.fetch(count.sql, count.params)
        items = [convert(r) for r in await self.transport.fetch(rows.sql, rows.params)]
        total = _at_least(int(totals[0]["total"]) if totals else 0, q.offset, items)
        return Page[T](items=items, total=total, limit=q.limit, offset=q.offset)

    async def _latest_page(
        self, statements: LatestPage, convert: Callable[[Row], T], q: Any
    ) -> Page[T]:
        """A page of a replacing table, each event once (see ``LatestPage``); the
        count and the window run side by side (the embedded engine has two sessions)."""
        count, window = statements.count, statements.window
        totals, rows = await asyncio.gather(
            self.transport.fetch(count.sql, count.params),
            self.transport.fetch(window.sql, window.params),
        )
        total = int(totals[0]["total"]) if totals else 0
        if not statements.holds_page(rows, q.limit) and (rows or q.offset < total):
            _log.debug("clickhouse.page.window_short", window_rows=statements.window_rows)
            full = statements.full
            rows = await self.transport.fetch(full.sql, full.params)
        items = [convert(r) for r in rows[: q.limit]]
        return Page[T](
            items=items, total=_at_least(total, q.offset, items), limit=q.limit, offset=q.offset
        )

    async def list_traces(self, query: TraceQuery) -> Page[Trace]:
        page = await self._latest_page(self.build.traces(query), trace_from_row, query)
        if page.items:
            counts = self.build.span_counts(
                [t.trace_id for t in page.items], [t.project_id for t in page.items]
            )
            rows = await self.transport.fetch(counts.sql, counts.params)
            by_id = {r["trace_id"]: int(r["spans"]) for r in rows}
            for trace in page.items:
                trace.span_count = by_id.get(trace.trace_id, 0)
        return page

    async def get_trace(self, trace_id: str, *, project_id: str | None = None) -> TraceTree | None:
        # One round trip in the usual case: the spans by trace id (a bloom-filter index
        # skips the other granules), the root span describing the trace.
        spans_q = self.build.trace_spans(trace_id, project_id, None)
        rows = await self.transport.fetch(spans_q.sql, spans_q.params)
        latest: dict[str, tuple[int, Span]] = {}
        for row in rows:
            span = span_from_row(row)
            seen = latest.get(span.span_id)
            if seen is None or int(row["ingested_ms"]) >= seen[0]:
                latest[span.span_id] = (int(row["ingested_ms"]), span)
        spans = sorted((s for _, s in latest.values()), key=lambda s: (s.start_time, s.span_id))
        root = next((s for s in spans if s.is_root), None)
        trace = _trace_of_root(root) if root is not None else None
        if trace is None:
            found = self.build.trace_rows(trace_id, project_id)
            trace_rows = await self.transport.fetch(found.sql, found.params)
            if trace_rows:
                trace = trace_from_row(trace_rows[0])
            elif spans:
                trace = _trace_of(spans)
            else:
                return None
        trace.span_count = len(spans)
        ids = {s.span_id for s in spans}
        children: dict[str, list[str]] = {}
        roots: list[str] = []
        for span in spans:
            parent = span.parent_span_id
            if parent and parent in ids and parent != span.span_id:
                children.setdefault(parent, []).append(span.span_id)
            else:
                roots.append(span.span_id)
        return TraceTree(trace=trace, spans=spans, children=children, roots=roots)

    async def list_spans(self, query: SpanQuery) -> Page[Span]:
        return await self._latest_page(self.build.spans(query), span_from_row, query)

    async def list_logs(self, query: LogQuery) -> Page[Log]:
        return await self._page(self.build.logs(query), log_from_row, query)

    async def list_metrics(self, query: MetricQuery) -> Page[Metric]:
        return await self._page(self.build.metrics(query), metric_from_row, query)

    async def list_scores(self, query: ScoreQuery) -> Page[Score]:
        return await self._page(self.build.scores(query), score_from_row, query)

    async def list_feedback(self, query: FeedbackQuery) -> Page[Feedback]:
        return await self._page(self.build.feedback(query), feedback_from_row, query)

    async def time_series(self, query: TimeSeriesQuery) -> list[TimeBucket]:
        statement = self.build.time_series(query)
        rows = await self.transport.fetch(statement.sql, statement.params)
        by_bucket = {int(r["bucket"]): r for r in rows}
        start = _as_utc(query.start)
        span_s = (_as_utc(query.end) - start).total_seconds()
        buckets = []
        for index in range(math.ceil(span_s / query.interval_s)):
            row = by_bucket.get(index)
            count = int(row["events"]) if row else 0
            errors = int(row["errors"]) if row else 0
            quantiles = list(row["q"]) if row and row["q"] is not None else [None, None]
            buckets.append(
                TimeBucket(
                    start=start + timedelta(seconds=index * query.interval_s),
                    count=count,
                    errors=errors,
                    error_rate=errors / count if count else 0.0,
                    p50_ms=_float(quantiles[0]) if count else None,
                    p95_ms=_float(quantiles[1]) if count else None,
                )
            )
        return buckets


def _trace_of_root(root: Span) -> Trace:
    """The trace a root span stands for (what the traces view stores)."""
    return Trace(
        trace_id=root.trace_id,
        project_id=root.project_id,
        deployment_id=root.deployment_id,
        name=root.name,
        status=root.status,
        start_time=root.start_time,
        end_time=root.end_time,
        duration_ms=root.duration_ms,
        input=root.input,
        output=root.output,
        metadata=root.metadata,
    )


def _trace_of(spans: list[Span]) -> Trace:
    """A trace whose root span has not arrived (yet): described by its first span."""
    first = spans[0]
    ends = [s.end_time for s in spans if s.end_time is not None]
    end = max(ends) if ends else None
    failed = any(s.status == "error" for s in spans)
    return Trace(
        trace_id=first.trace_id,
        project_id=first.project_id,
        deployment_id=first.deployment_id,
        name=first.name,
        status="error" if failed else first.status,
        start_time=first.start_time,
        end_time=end,
        duration_ms=(end - first.start_time).total_seconds() * 1000 if end else None,
    )


def _at_least(total: int, offset: int, items: Sequence[object]) -> int:
    """The count, never below what the page shows: the count and the rows are two
    reads, and an insert landing between them must not give a page of one item whose
    total is 0."""
    return max(total, offset + len(items)) if items else total
