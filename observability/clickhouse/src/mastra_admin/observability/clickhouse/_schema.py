"""The ClickHouse schema: tables, hourly views, the parsing pipeline and migrations.

Six tables hold the events (traces, spans, logs, metrics, scores, feedback), five
hourly materialized views aggregate them, and a landing table takes raw JSON lines:
ClickHouse parses them, not Python. An insert puts lines into the ``Null``-engine
landing table with a context (signal, ids, source) in the insert's ``log_comment``;
one view per signal turns each line into typed columns (its envelope fields, then
its record read once into a named tuple) and two more views split the result into
the event table and the rejects table. Root spans become traces through a view on the spans table.

Every table keeps the tokens of its last ``dedup_window`` inserted blocks
(``non_replicated_deduplication_window``), so an insert repeated with the same
``insert_deduplication_token`` adds nothing: that is what makes ingestion
exactly-once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from mastra_admin.observability.clickhouse._transport import Transport

__all__ = [
    "HOURLY_VIEWS",
    "LANDING",
    "MIGRATIONS",
    "REJECTS",
    "SIGNALS",
    "TABLES",
    "Migration",
    "Schema",
    "SchemaStatus",
]

_log = structlog.get_logger("mastra_admin.observability.clickhouse")

TRACES = "mastra_admin_traces"
SPANS = "mastra_admin_spans"
LOGS = "mastra_admin_logs"
METRICS = "mastra_admin_metrics"
SCORES = "mastra_admin_scores"
FEEDBACK = "mastra_admin_feedback"
TABLES = (TRACES, SPANS, LOGS, METRICS, SCORES, FEEDBACK)

HOURLY_VIEWS = {
    TRACES: "mastra_admin_traces_hourly_stats",
    SPANS: "mastra_admin_spans_hourly_stats",
    LOGS: "mastra_admin_logs_hourly_stats",
    METRICS: "mastra_admin_metrics_hourly_stats",
    SCORES: "mastra_admin_scores_hourly_stats",
}

LANDING = "mastra_admin_ingest_landing"
"""Prefix of the landing tables, one per parser: ``mastra_admin_ingest_landing_spans`` …"""
REJECTS = "mastra_admin_ingest_rejects"
MIGRATIONS_TABLE = "mastra_admin_schema_migrations"

SIGNALS = ("traces", "spans", "logs", "runtime", "metrics", "scores", "feedback")
"""The ``signal`` of an insert's context: which parser reads its lines. ``runtime``
is a server's captured stdout/stderr: JSON lines are structured logs, any other line
an info log."""

_TS = "DateTime64(3, 'UTC')"


# --- SQL fragments for the parsers ------------------------------------------------------


def _first(*exprs: str) -> str:
    """The first non-empty string of ``exprs``."""
    if len(exprs) == 1:
        return exprs[0]
    args = ", ".join(f"{e} != '', {e}" for e in exprs[:-1])
    return f"multiIf({args}, {exprs[-1]})"


def _ts(alias: str, expr: str) -> str:
    """Select items defining ``alias``: a timestamp from JSON text, ISO 8601 (any
    offset) or epoch seconds/milliseconds; NULL when absent or unreadable."""
    return (
        f"{expr} AS {alias}_s, toFloat64OrNull({alias}_s) AS {alias}_n, "
        f"if(isNull({alias}_n), parseDateTime64BestEffortOrNull({alias}_s, 3, 'UTC'), "
        f"fromUnixTimestamp64Milli(toInt64(if({alias}_n < 100000000000, {alias}_n * 1000, "
        f"{alias}_n)), 'UTC')) AS {alias}"
    )


def _object(expr: str, default: str = "'{}'") -> str:
    """``expr`` when it is a JSON object's text, else ``default``."""
    return f"if(startsWith({expr}, '{{'), {expr}, {default})"


def _nullable(expr: str) -> str:
    return f"nullIf({expr}, '')"


def _extras(base: str, pairs: Sequence[tuple[str, str]]) -> str:
    """``base`` (an object's text) with extra keys; each pair is (key, raw JSON or '')."""
    parts = ", ".join(f"if({raw} != '', concat('\"{key}\":', {raw}), '')" for key, raw in pairs)
    extra = f"concat('{{', arrayStringConcat(arrayFilter(x -> x != '', [{parts}]), ','), '}}')"
    return f"if({extra} = '{{}}', {base}, jsonMergePatch({base}, {extra}))"


def _json_string(expr: str) -> str:
    """``expr`` as a JSON string value, or '' when empty."""
    return f"if({expr} = '', '', toJSONString({expr}))"


_CONTEXT = """
    getSetting('log_comment') AS _ctx,
    JSONExtractString(_ctx, 'signal') AS _ctx_signal,
    JSONExtractString(_ctx, 'project_id') AS _ctx_project,
    JSONExtractString(_ctx, 'deployment_id') AS _ctx_deployment,
    JSONExtractString(_ctx, 'source') AS _ctx_source,
    JSONExtractUInt(_ctx, 'offset') AS _ctx_offset,
    JSONExtractString(_ctx, 'origin') AS _ctx_origin"""

_ENVELOPE_FIELDS = (
    "type String, data String, projectId String, project_id String, "
    "deploymentId String, deployment_id String"
)
_EVENT_TYPES = "('trace', 'span', 'log', 'metric', 'score', 'feedback')"


def _parse(fields: str, db: str, landing: str, *, version: int = 2) -> str:
    """Select ``_r`` (the record as a named tuple), ``_rec`` (its text) and ``_e`` (the
    outer object) from the landing table: a ``{"type", "data"}`` envelope is opened,
    any other object is the record itself.

    Version 2 (migration 4) reads the outer object's envelope fields only, then the
    record once: one tuple of every field per line. Version 1 read every field of the
    outer object and again of an envelope's record, then chose between the two
    tuples, which held three tuples of every field per line at once (about 20 MB more
    for each 16 MiB of envelope lines, a quarter of what an insert needs)."""
    record_type = f"Tuple({_ENVELOPE_FIELDS}, {fields})"
    if version == 1:
        return f"""
        SELECT
            line,
            JSONExtract(line, '{record_type}') AS _e,
            (tupleElement(_e, 'type') IN {_EVENT_TYPES}
                AND startsWith(tupleElement(_e, 'data'), '{{')) AS _is_envelope,
            if(_is_envelope, JSONExtract(tupleElement(_e, 'data'), '{record_type}'), _e) AS _r,
            if(_is_envelope, tupleElement(_e, 'data'), line) AS _rec
        FROM {db}.{landing}"""
    return f"""
        SELECT line, _e, _rec, JSONExtract(_rec, '{record_type}') AS _r
        FROM (
            SELECT
                line,
                JSONExtract(line, 'Tuple({_ENVELOPE_FIELDS})') AS _e,
                if(tupleElement(_e, 'type') IN {_EVENT_TYPES}
                    AND startsWith(tupleElement(_e, 'data'), '{{'),
                   tupleElement(_e, 'data'), line) AS _rec
            FROM {db}.{landing})"""


def _ids() -> str:
    """project_id and deployment_id: the context's (folder, build meta) first, then
    the record's, then the envelope's."""
    project = _first(
        "_ctx_project",
        "_r.project_id",
        "_r.projectId",
        "tupleElement(_e, 'projectId')",
        "tupleElement(_e, 'project_id')",
    )
    deployment = _first(
        "_ctx_deployment",
        "_r.deployment_id",
        "_r.deploymentId",
        "tupleElement(_e, 'deploymentId')",
        "tupleElement(_e, 'deployment_id')",
    )
    return f"{project} AS project_id, {deployment} AS deployment_id"


def _reject_reason(missing: str) -> str:
    """'' for a good line, 'skip' for a blank one, else why the line is refused."""
    return (
        f"multiIf(NOT ({missing}), '', empty(trimBoth(line)), 'skip', "
        "isValidJSON(line), 'missing required fields', 'not a JSON object')"
    )


def _raw_line() -> str:
    return (
        "if(_reject IN ('', 'skip'), '', substring(line, 1, 4096)) AS _line, "
        "_ctx_source AS _source, _ctx_offset AS _offset, "
        "_ctx_signal AS _signal"
    )


@dataclass(frozen=True)
class _Parser:
    """How one signal's lines become rows of one table."""

    name: str
    signals: tuple[str, ...]
    table: str
    columns: tuple[str, ...]
    select: str


_SPAN_FIELDS = (
    "id String, spanId String, span_id String, traceId String, trace_id String, "
    "parentSpanId Nullable(String), parent_span_id Nullable(String), name String, "
    "spanType String, span_type String, kind String, status String, "
    "entityType String, entity_type String, entityId String, entity_id String, "
    "entityName String, entity_name String, startTime String, start_time String, "
    "startedAt String, endTime String, end_time String, endedAt String, "
    "durationMs Nullable(Float64), duration_ms Nullable(Float64), "
    "isRootSpan Nullable(Bool), is_root Nullable(Bool), attributes String, "
    "metadata String, errorInfo String, error String, events String, "
    "createdAt String, recordedAt String, recorded_at String"
)

_SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "project_id",
    "deployment_id",
    "name",
    "span_type",
    "kind",
    "status",
    "entity_type",
    "entity_id",
    "entity_name",
    "start_time",
    "end_time",
    "duration_ms",
    "is_root",
    "attributes",
    "metadata",
    "input",
    "output",
    "error",
    "events",
    "source",
    "recorded_at",
)

_SPANS_SELECT = f"""
SELECT
    {_ids()},
    {_first("_r.spanId", "_r.span_id", "_r.id")} AS span_id,
    {_first("_r.traceId", "_r.trace_id")} AS trace_id,
    nullIf(coalesce(_r.parentSpanId, _r.parent_span_id, ''), '') AS parent_span_id,
    _r.name AS name,
    {_first("_r.spanType", "_r.span_type", f"if(_r.type IN {_EVENT_TYPES}, '', _r.type)")}
        AS span_type,
    if(_r.kind IN ('internal', 'server', 'client', 'producer', 'consumer'), _r.kind, 'internal')
        AS kind,
    {_ts("_start", _first("_r.startTime", "_r.start_time", "_r.startedAt"))},
    {_ts("end_time", _first("_r.endTime", "_r.end_time", "_r.endedAt"))},
    {_first("_r.errorInfo", "_r.error")} AS _err,
    multiIf(_err = '' OR _err = 'null', '', startsWith(_err, '{{'), _err,
        concat('{{"message":', toJSONString(_err), '}}')) AS error,
    multiIf(lower(_r.status) IN ('ok', 'error', 'unset'), lower(_r.status),
        error != '', 'error', isNotNull(end_time), 'ok', 'unset') AS status,
    {_nullable(_first("_r.entityType", "_r.entity_type"))} AS entity_type,
    {_nullable(_first("_r.entityId", "_r.entity_id"))} AS entity_id,
    {_nullable(_first("_r.entityName", "_r.entity_name"))} AS entity_name,
    assumeNotNull(_start) AS start_time,
    coalesce(_r.durationMs, _r.duration_ms,
        if(isNull(end_time) OR isNull(_start), NULL,
           toFloat64(toUnixTimestamp64Milli(assumeNotNull(end_time))
                     - toUnixTimestamp64Milli(assumeNotNull(_start))))) AS duration_ms,
    coalesce(_r.isRootSpan, _r.is_root, isNull(parent_span_id)) AS is_root,
    {_object("_r.attributes")} AS attributes,
    {_object("_r.metadata")} AS metadata,
    JSONExtractRaw(_rec, 'input') AS input,
    JSONExtractRaw(_rec, 'output') AS output,
    if(startsWith(_r.events, '['), _r.events, '[]') AS events,
    _ctx_origin AS source,
    {_ts("_recorded", _first("_r.createdAt", "_r.recordedAt", "_r.recorded_at"))},
    coalesce(_recorded, now64(3)) AS recorded_at,
    {_reject_reason("trace_id = '' OR span_id = '' OR isNull(_start)")} AS _reject,
    {_raw_line()}
"""

_TRACE_FIELDS = (
    "id String, traceId String, trace_id String, name String, status String, "
    "startTime String, start_time String, endTime String, end_time String, "
    "durationMs Nullable(Float64), duration_ms Nullable(Float64), metadata String, "
    "rootSpanId String, root_span_id String, recordedAt String, recorded_at String"
)

_TRACE_COLUMNS = (
    "trace_id",
    "project_id",
    "deployment_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "duration_ms",
    "input",
    "output",
    "metadata",
    "root_span_id",
    "recorded_at",
)

_TRACES_SELECT = f"""
SELECT
    {_ids()},
    {_first("_r.traceId", "_r.trace_id", "_r.id")} AS trace_id,
    _r.name AS name,
    {_ts("_start", _first("_r.startTime", "_r.start_time"))},
    {_ts("end_time", _first("_r.endTime", "_r.end_time"))},
    if(lower(_r.status) IN ('ok', 'error', 'unset'), lower(_r.status), 'unset') AS status,
    assumeNotNull(_start) AS start_time,
    coalesce(_r.durationMs, _r.duration_ms,
        if(isNull(end_time) OR isNull(_start), NULL,
           toFloat64(toUnixTimestamp64Milli(assumeNotNull(end_time))
                     - toUnixTimestamp64Milli(assumeNotNull(_start))))) AS duration_ms,
    JSONExtractRaw(_rec, 'input') AS input,
    JSONExtractRaw(_rec, 'output') AS output,
    {_object("_r.metadata")} AS metadata,
    {_first("_r.rootSpanId", "_r.root_span_id")} AS root_span_id,
    {_ts("_recorded", _first("_r.recordedAt", "_r.recorded_at"))},
    coalesce(_recorded, now64(3)) AS recorded_at,
    {_reject_reason("trace_id = '' OR isNull(_start)")} AS _reject,
    {_raw_line()}
"""

_LOG_FIELDS = (
    "id String, logId String, level String, message String, msg String, "
    "timestamp String, time String, traceId String, trace_id String, "
    "spanId String, span_id String, source String, attributes String"
)

_LOG_COLUMNS = (
    "id",
    "project_id",
    "deployment_id",
    "trace_id",
    "span_id",
    "level",
    "message",
    "timestamp",
    "source",
    "attributes",
    "recorded_at",
)

_LOG_KNOWN_KEYS = (
    "'id', 'logId', 'level', 'message', 'msg', 'timestamp', 'time', 'traceId', "
    "'trace_id', 'spanId', 'span_id', 'project_id', 'projectId', 'deployment_id', "
    "'deploymentId', 'source', 'attributes', 'type', 'data'"
)

_LOGS_SELECT = f"""
SELECT
    {_ids()},
    (_r.message != '' OR _r.msg != '' OR _r.level != '') AS _structured,
    (_ctx_signal = 'runtime' AND NOT _structured) AS _plain,
    lower(_r.level) AS _lvl,
    toInt32OrNull(_lvl) AS _lvl_num,
    if(_plain, 'info', multiIf(
        isNotNull(_lvl_num), multiIf(_lvl_num <= 20, 'debug', _lvl_num <= 30, 'info',
                                     _lvl_num <= 40, 'warn', _lvl_num <= 50, 'error', 'fatal'),
        _lvl IN ('trace', 'debug', 'verbose'), 'debug',
        _lvl IN ('warn', 'warning'), 'warn',
        _lvl IN ('error', 'err'), 'error',
        _lvl IN ('fatal', 'critical', 'panic'), 'fatal',
        'info')) AS level,
    if(_plain, trimRight(line, '\\r'), {_first("_r.message", "_r.msg")}) AS message,
    {_ts("_at", _first("_r.timestamp", "_r.time"))},
    if(_plain, now64(3), coalesce(_at, now64(3))) AS timestamp,
    {_nullable(_first("_r.traceId", "_r.trace_id"))} AS trace_id,
    {_nullable(_first("_r.spanId", "_r.span_id"))} AS span_id,
    {_first("_r.source", "_ctx_origin")} AS source,
    multiIf(
        _plain, '{{}}',
        startsWith(_r.attributes, '{{'), _r.attributes,
        concat('{{', arrayStringConcat(arrayMap(kv -> concat(toJSONString(kv.1), ':', kv.2),
            arrayFilter(kv -> kv.1 NOT IN ({_LOG_KNOWN_KEYS}),
                JSONExtractKeysAndValuesRaw(_rec))), ','), '}}')) AS attributes,
    {
    _first(
        "_r.logId",
        "_r.id",
        "lower(hex(sipHash128(_ctx_source, _ctx_offset, rowNumberInAllBlocks(), line)))",
    )
}
        AS id,
    now64(3) AS recorded_at,
    if(_ctx_signal = 'runtime', if(empty(trimBoth(line)), 'skip', ''),
        {_reject_reason("NOT _structured")}) AS _reject,
    {_raw_line()}
"""

_METRIC_FIELDS = (
    "id String, metricId String, name String, metricType String, "
    "value Nullable(Float64), unit String, timestamp String, traceId String, "
    "trace_id String, spanId String, span_id String, labels String, metadata String, "
    "correlationContext String, costContext String"
)

_METRIC_COLUMNS = (
    "id",
    "project_id",
    "deployment_id",
    "name",
    "type",
    "value",
    "unit",
    "timestamp",
    "labels",
    "trace_id",
    "span_id",
    "metadata",
    "recorded_at",
)

_METRIC_METADATA = _extras(
    _object("_r.metadata"),
    [
        ("correlationContext", _object("_r.correlationContext", "''")),
        ("costContext", _object("_r.costContext", "''")),
    ],
)

_METRICS_SELECT = f"""
SELECT
    {_ids()},
    {
    _first(
        "_r.metricId",
        "_r.id",
        "lower(hex(sipHash128(_ctx_source, _ctx_offset, rowNumberInAllBlocks(), line)))",
    )
}
        AS id,
    _r.name AS name,
    multiIf(_r.metricType IN ('counter', 'gauge', 'histogram'), _r.metricType,
            _r.type IN ('counter', 'gauge', 'histogram'), _r.type, 'gauge') AS type,
    ifNull(_r.value, nan) AS value,
    {_nullable("_r.unit")} AS unit,
    {_ts("_at", "_r.timestamp")},
    assumeNotNull(_at) AS timestamp,
    {_object("_r.labels")} AS labels,
    {_nullable(_first("_r.traceId", "_r.trace_id"))} AS trace_id,
    {_nullable(_first("_r.spanId", "_r.span_id"))} AS span_id,
    {_METRIC_METADATA} AS metadata,
    now64(3) AS recorded_at,
    {_reject_reason("name = '' OR isNull(_r.value) OR isNull(_at)")} AS _reject,
    {_raw_line()}
"""

_SCORE_FIELDS = (
    "id String, scoreId String, name String, scorerName String, scorerId String, "
    "scorer String, value Nullable(Float64), score Nullable(Float64), reason String, "
    "comment String, timestamp String, traceId String, trace_id String, spanId String, "
    "span_id String, metadata String, scorerVersion String, scoreSource String, "
    "targetEntityType String, correlationContext String, normalizedValue Nullable(Float64)"
)

_SCORE_COLUMNS = (
    "id",
    "project_id",
    "deployment_id",
    "trace_id",
    "span_id",
    "name",
    "value",
    "scorer",
    "reason",
    "timestamp",
    "metadata",
    "recorded_at",
)

_SCORE_METADATA = _extras(
    _object("_r.metadata"),
    [
        ("scorerName", _json_string("_r.scorerName")),
        ("scorerVersion", _json_string("_r.scorerVersion")),
        ("scoreSource", _json_string("_r.scoreSource")),
        ("targetEntityType", _json_string("_r.targetEntityType")),
        ("normalizedValue", "if(isNull(_r.normalizedValue), '', toString(_r.normalizedValue))"),
        ("correlationContext", _object("_r.correlationContext", "''")),
    ],
)

_SCORES_SELECT = f"""
SELECT
    {_ids()},
    {
    _first(
        "_r.scoreId",
        "_r.id",
        "lower(hex(sipHash128(_ctx_source, _ctx_offset, rowNumberInAllBlocks(), line)))",
    )
}
        AS id,
    {_first("_r.name", "_r.scorerName", "_r.scorerId")} AS name,
    coalesce(_r.score, _r.value) AS _value,
    ifNull(_value, nan) AS value,
    {_nullable(_first("_r.scorer", "_r.scorerId"))} AS scorer,
    {_nullable(_first("_r.reason", "_r.comment"))} AS reason,
    {_ts("_at", "_r.timestamp")},
    assumeNotNull(_at) AS timestamp,
    {_nullable(_first("_r.traceId", "_r.trace_id"))} AS trace_id,
    {_nullable(_first("_r.spanId", "_r.span_id"))} AS span_id,
    {_SCORE_METADATA} AS metadata,
    now64(3) AS recorded_at,
    {_reject_reason("name = '' OR isNull(_value) OR isNull(_at)")} AS _reject,
    {_raw_line()}
"""

_FEEDBACK_FIELDS = (
    "id String, feedbackId String, timestamp String, traceId String, trace_id String, "
    "spanId String, span_id String, source String, feedbackSource String, "
    "feedback_type String, feedbackType String, comment String, user_id String, "
    "userId String, feedbackUserId String, metadata String, correlationContext String"
)

_FEEDBACK_COLUMNS = (
    "id",
    "project_id",
    "deployment_id",
    "trace_id",
    "span_id",
    "source",
    "feedback_type",
    "value",
    "comment",
    "user_id",
    "timestamp",
    "metadata",
    "recorded_at",
)

_FEEDBACK_METADATA = _extras(
    _object("_r.metadata"), [("correlationContext", _object("_r.correlationContext", "''"))]
)

_FEEDBACK_SELECT = f"""
SELECT
    {_ids()},
    {
    _first(
        "_r.feedbackId",
        "_r.id",
        "lower(hex(sipHash128(_ctx_source, _ctx_offset, rowNumberInAllBlocks(), line)))",
    )
}
        AS id,
    {_ts("_at", "_r.timestamp")},
    assumeNotNull(_at) AS timestamp,
    {_nullable(_first("_r.traceId", "_r.trace_id"))} AS trace_id,
    {_nullable(_first("_r.spanId", "_r.span_id"))} AS span_id,
    {_nullable(_first("_r.feedbackSource", "_r.source"))} AS source,
    {_first("_r.feedbackType", "_r.feedback_type")} AS feedback_type,
    JSONExtractRaw(_rec, 'value') AS value,
    {_nullable("_r.comment")} AS comment,
    {_nullable(_first("_r.feedbackUserId", "_r.user_id", "_r.userId"))} AS user_id,
    {_FEEDBACK_METADATA} AS metadata,
    now64(3) AS recorded_at,
    {_reject_reason("isNull(_at)")} AS _reject,
    {_raw_line()}
"""


def landing_table(parser: str) -> str:
    """The Null-engine table whose inserts the parser ``parser`` reads."""
    return f"{LANDING}_{parser}"


PARSER_OF_SIGNAL = {
    "spans": "spans",
    "traces": "traces",
    "logs": "logs",
    "runtime": "logs",
    "metrics": "metrics",
    "scores": "scores",
    "feedback": "feedback",
}

PARSERS = (
    _Parser("spans", ("spans",), SPANS, _SPAN_COLUMNS, _SPANS_SELECT),
    _Parser("traces", ("traces",), TRACES, _TRACE_COLUMNS, _TRACES_SELECT),
    _Parser("logs", ("logs", "runtime"), LOGS, _LOG_COLUMNS, _LOGS_SELECT),
    _Parser("metrics", ("metrics",), METRICS, _METRIC_COLUMNS, _METRICS_SELECT),
    _Parser("scores", ("scores",), SCORES, _SCORE_COLUMNS, _SCORES_SELECT),
    _Parser("feedback", ("feedback",), FEEDBACK, _FEEDBACK_COLUMNS, _FEEDBACK_SELECT),
)

_PARSER_FIELDS = {
    "spans": _SPAN_FIELDS,
    "traces": _TRACE_FIELDS,
    "logs": _LOG_FIELDS,
    "metrics": _METRIC_FIELDS,
    "scores": _SCORE_FIELDS,
    "feedback": _FEEDBACK_FIELDS,
}


_RECORD_FIELD = re.compile(r"\b_r\.([A-Za-z_]+)")


def parser_select(parser: _Parser, db: str, *, version: int = 2) -> str:
    """The full SELECT of a parser's view over the landing table (also usable over
    ``file(…, LineAsString)`` by replacing the FROM); ``version`` as ``_parse``.

    The selects name the record's fields ``_r.field``; from version 2 that becomes
    ``tupleElement(_r, 'field')``. A view's query is planned again for every insert,
    and the analyzer resolves a compound name (a column? a table's column? a
    subcolumn?) slowly: the spans view planned in 48 ms, 25 ms with ``tupleElement``,
    of an insert of a few lines' 86 ms."""
    inner = _parse(_PARSER_FIELDS[parser.name], db, landing_table(parser.name), version=version)
    select = parser.select.strip()
    if version >= 2:
        select = _RECORD_FIELD.sub(r"tupleElement(_r, '\1')", select)
    return f"WITH {_CONTEXT.strip()}\n{select}\nFROM ({inner})"


# --- DDL ------------------------------------------------------------------------------


def _table_settings(window: int, granularity: int = 8192) -> str:
    return (
        f"SETTINGS index_granularity = {granularity}, "
        f"non_replicated_deduplication_window = {window}"
    )


def _ttl(column: str, days: int) -> str:
    return f"TTL toDateTime({column}) + INTERVAL {days} DAY"


_STATUS = "Enum8('unset' = 0, 'ok' = 1, 'error' = 2)"
_TRACES_KEY_V1 = "project_id, deployment_id, start_time, trace_id"
_TRACES_KEY = "project_id, start_time, trace_id"
"""Traces of a project in time order (migration 3): the newest page of a project, or of
one of its deployments, is read backwards from the end of its key range."""
_PAGE_GRANULARITY = 1024
"""Rows per granule of the tables a page of traces reads by key (traces, span counts):
a page reads a few granules, and a smaller granule is less to read and decompress."""


def _traces_table(db: str, name: str, days: int, settings: str, key: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {db}.{name} (
    trace_id String,
    project_id LowCardinality(String),
    deployment_id LowCardinality(String),
    name String,
    status {_STATUS},
    start_time {_TS},
    end_time Nullable({_TS}),
    duration_ms Nullable(Float64),
    input String DEFAULT '',
    output String DEFAULT '',
    metadata String DEFAULT '{{}}',
    root_span_id String DEFAULT '',
    recorded_at {_TS},
    ingested_at {_TS} DEFAULT now64(3),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(start_time)
ORDER BY ({key})
{_ttl("start_time", days)}
{settings}"""


def _event_tables(db: str, days: int, log_days: int, window: int) -> list[str]:
    settings = _table_settings(window)
    status = _STATUS
    return [
        _traces_table(db, TRACES, days, settings, _TRACES_KEY_V1),
        f"""CREATE TABLE IF NOT EXISTS {db}.{SPANS} (
    span_id String,
    trace_id String,
    parent_span_id Nullable(String),
    project_id LowCardinality(String),
    deployment_id LowCardinality(String),
    name String,
    span_type LowCardinality(String),
    kind Enum8('internal' = 0, 'server' = 1, 'client' = 2, 'producer' = 3, 'consumer' = 4),
    status {status},
    entity_type Nullable(String),
    entity_id Nullable(String),
    entity_name Nullable(String),
    start_time {_TS},
    end_time Nullable({_TS}),
    duration_ms Nullable(Float64),
    is_root Bool,
    attributes String DEFAULT '{{}}',
    metadata String DEFAULT '{{}}',
    input String DEFAULT '',
    output String DEFAULT '',
    error String DEFAULT '',
    events String DEFAULT '[]',
    source LowCardinality(String) DEFAULT '',
    recorded_at {_TS},
    ingested_at {_TS} DEFAULT now64(3),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(start_time)
ORDER BY (project_id, deployment_id, trace_id, span_id)
{_ttl("start_time", days)}
{settings}""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{LOGS} (
    id String,
    project_id LowCardinality(String),
    deployment_id LowCardinality(String),
    trace_id Nullable(String),
    span_id Nullable(String),
    level Enum8('debug' = 0, 'info' = 1, 'warn' = 2, 'error' = 3, 'fatal' = 4),
    message String,
    timestamp {_TS},
    source LowCardinality(String) DEFAULT '',
    attributes String DEFAULT '{{}}',
    recorded_at {_TS},
    ingested_at {_TS} DEFAULT now64(3),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, deployment_id, timestamp, id)
{_ttl("timestamp", log_days)}
{settings}""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{METRICS} (
    id String,
    project_id LowCardinality(String),
    deployment_id LowCardinality(String),
    name LowCardinality(String),
    type Enum8('counter' = 0, 'gauge' = 1, 'histogram' = 2),
    value Float64,
    unit Nullable(String),
    timestamp {_TS},
    labels String DEFAULT '{{}}',
    trace_id Nullable(String),
    span_id Nullable(String),
    metadata String DEFAULT '{{}}',
    recorded_at {_TS},
    ingested_at {_TS} DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, deployment_id, name, timestamp, id)
{_ttl("timestamp", days)}
{settings}""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{SCORES} (
    id String,
    project_id LowCardinality(String),
    deployment_id LowCardinality(String),
    trace_id Nullable(String),
    span_id Nullable(String),
    name LowCardinality(String),
    value Float64,
    scorer Nullable(String),
    reason Nullable(String),
    timestamp {_TS},
    metadata String DEFAULT '{{}}',
    recorded_at {_TS},
    ingested_at {_TS} DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, deployment_id, name, timestamp, id)
{_ttl("timestamp", days)}
{settings}""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{FEEDBACK} (
    id String,
    project_id LowCardinality(String),
    deployment_id LowCardinality(String),
    trace_id Nullable(String),
    span_id Nullable(String),
    source Nullable(String),
    feedback_type LowCardinality(String),
    value String DEFAULT '',
    comment Nullable(String),
    user_id Nullable(String),
    timestamp {_TS},
    metadata String DEFAULT '{{}}',
    recorded_at {_TS},
    ingested_at {_TS} DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, deployment_id, timestamp, id)
{_ttl("timestamp", days)}
{settings}""",
    ]


_QUANTILES = "quantilesTDigest(0.5, 0.95)"


def _hourly_views(db: str, days: int, log_days: int, window: int) -> list[str]:
    settings = _table_settings(window)
    latency_columns = f"""count UInt64,
    errors UInt64,
    total_duration_ms Float64,
    duration_quantiles AggregateFunction({_QUANTILES}, Float64)"""
    latency_select = f"""count() AS count,
    countIf(status = 'error') AS errors,
    sum(ifNull(duration_ms, 0)) AS total_duration_ms,
    {_QUANTILES.replace("(", "StateIf(", 1)}(assumeNotNull(duration_ms), isNotNull(duration_ms))
        AS duration_quantiles"""
    value_columns = """count UInt64,
    sum_value Float64,
    min_value SimpleAggregateFunction(min, Float64),
    max_value SimpleAggregateFunction(max, Float64)"""
    value_select = """count() AS count,
    sum(value) AS sum_value,
    min(value) AS min_value,
    max(value) AS max_value"""
    specs = [
        (
            TRACES,
            "start_time",
            "status Enum8('unset' = 0, 'ok' = 1, 'error' = 2)",
            "status",
            latency_columns,
            latency_select,
            days,
        ),
        (
            SPANS,
            "start_time",
            "span_type LowCardinality(String),\n    "
            "status Enum8('unset' = 0, 'ok' = 1, 'error' = 2)",
            "span_type, status",
            latency_columns,
            latency_select,
            days,
        ),
        (
            LOGS,
            "timestamp",
            "level Enum8('debug' = 0, 'info' = 1, 'warn' = 2, 'error' = 3, 'fatal' = 4)",
            "level",
            "count UInt64",
            "count() AS count",
            log_days,
        ),
        (
            METRICS,
            "timestamp",
            "name LowCardinality(String)",
            "name",
            value_columns,
            value_select,
            days,
        ),
        (
            SCORES,
            "timestamp",
            "name LowCardinality(String)",
            "name",
            value_columns,
            value_select,
            days,
        ),
    ]
    statements = []
    for table, time_column, key_columns, keys, columns, select, ttl_days in specs:
        view = HOURLY_VIEWS[table]
        target = f"{view}_data"
        statements.append(
            f"""CREATE TABLE IF NOT EXISTS {db}.{target} (
    project_id LowCardinality(String),
    deployment_id LowCardinality(String),
    hour DateTime('UTC'),
    {key_columns},
    {columns}
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, deployment_id, hour, {keys})
{_ttl("hour", ttl_days)}
{settings}"""
        )
        statements.append(
            f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{view} TO {db}.{target} AS
SELECT
    project_id,
    deployment_id,
    toStartOfHour(toDateTime({time_column}, 'UTC')) AS hour,
    {keys},
    {select}
FROM {db}.{table}
GROUP BY project_id, deployment_id, hour, {keys}"""
        )
    return statements


def _column_types(statement: str) -> dict[str, str]:
    """Column name -> type of one of this module's CREATE TABLE statements."""
    body = statement[statement.index("(") + 1 : statement.index("\n)")]
    types: dict[str, str] = {}
    for raw in body.splitlines():
        line = raw.strip().rstrip(",")
        if not line or line.startswith("INDEX "):
            continue
        name, rest = line.split(" ", 1)
        types[name] = rest.split(" DEFAULT ")[0]
    return types


def _parse_view_query(parser: _Parser, db: str, version: int) -> str:
    return f"""SELECT {", ".join(parser.columns)}, _reject, _line, _source, _offset, _signal
FROM ({parser_select(parser, db, version=version)})"""


def _pipeline(db: str, window: int, event_tables: list[str], *, parse_version: int) -> list[str]:
    column_types = {}
    for statement in event_tables:
        name = statement.split("(", 1)[0].split(".")[-1].strip()
        column_types[name] = _column_types(statement)
    statements = [
        f"""CREATE TABLE IF NOT EXISTS {db}.{REJECTS} (
    source String,
    chunk_offset UInt64,
    signal LowCardinality(String),
    reason LowCardinality(String),
    line String,
    rejected_at {_TS} DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (source, chunk_offset)
{_ttl("rejected_at", 14)}
{_table_settings(window)}""",
    ]
    for parser in PARSERS:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {db}.{landing_table(parser.name)} (line String) "
            "ENGINE = Null"
        )
        parsed = f"mastra_admin_ingest_parsed_{parser.name}"
        columns = ", ".join(parser.columns)
        types = column_types[parser.table]
        definitions = ",\n    ".join(
            [f"{name} {types[name]}" for name in parser.columns]
            + [
                "_reject String",
                "_line String",
                "_source String",
                "_offset UInt64",
                "_signal String",
            ]
        )
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {db}.{parsed} (\n    {definitions}\n) ENGINE = Null"
        )
        statements.append(
            f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mastra_admin_ingest_parse_{parser.name}
TO {db}.{parsed} AS
{_parse_view_query(parser, db, parse_version)}"""
        )
        statements.append(
            f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mastra_admin_ingest_load_{parser.name}
TO {db}.{parser.table} AS
SELECT {columns} FROM {db}.{parsed} WHERE _reject = ''"""
        )
        statements.append(
            f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mastra_admin_ingest_reject_{parser.name}
TO {db}.{REJECTS} AS
SELECT _source AS source, _offset AS chunk_offset, _signal AS signal,
       _reject AS reason, _line AS line
FROM {db}.{parsed} WHERE _reject NOT IN ('', 'skip')"""
        )
    statements.append(
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mastra_admin_traces_from_spans
TO {db}.{TRACES} AS
SELECT trace_id, project_id, deployment_id, name, status, start_time, end_time,
       duration_ms, input, output, metadata, span_id AS root_span_id, recorded_at
FROM {db}.{SPANS} WHERE is_root"""
    )
    return statements


SPAN_COUNTS = "mastra_admin_trace_span_counts"
"""Spans per trace as summed counts (migrations 2-4): every span row inserted counted
once, so a span sent twice counted twice. Migration 5 replaces it with ``SPAN_IDS``."""
SPAN_IDS = "mastra_admin_trace_span_ids"
"""The distinct span ids of each trace (migration 5), as ``uniqExact`` states: a span
inserted twice counts once, whatever the merge state."""
_TTL_COLUMNS = {
    TRACES: "start_time",
    SPANS: "start_time",
    SPAN_COUNTS: "first_start",
    SPAN_IDS: "first_start",
}


def _span_counts_table(db: str, name: str, days: int, settings: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {db}.{name} (
    project_id LowCardinality(String),
    deployment_id LowCardinality(String),
    trace_id String,
    spans UInt64,
    first_start SimpleAggregateFunction(min, {_TS})
)
ENGINE = SummingMergeTree
ORDER BY (project_id, deployment_id, trace_id)
{_ttl("first_start", days)}
{settings}"""


def _span_counts(db: str, days: int, window: int) -> list[str]:
    """Spans per trace, kept by a view so that a page of traces gets its span counts
    by primary key instead of scanning the spans. Spans already stored are counted by
    a backfill right after the view starts (spans inserted in the few milliseconds
    between the two are counted twice)."""
    return [
        _span_counts_table(db, SPAN_COUNTS, days, _table_settings(window)),
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{SPAN_COUNTS}_view TO {db}.{SPAN_COUNTS} AS
SELECT project_id, deployment_id, trace_id, count() AS spans, min(start_time) AS first_start
FROM {db}.{SPANS}
GROUP BY project_id, deployment_id, trace_id""",
        f"""INSERT INTO {db}.{SPAN_COUNTS}
SELECT project_id, deployment_id, trace_id, count() AS spans, min(start_time) AS first_start
FROM {db}.{SPANS}
WHERE ingested_at <= now64(3)
GROUP BY project_id, deployment_id, trace_id""",
    ]


_SPAN_IDS_GRANULE_BYTES = 4096
"""A granule of the span ids holds at most 4 KiB (and ``_PAGE_GRANULARITY`` rows). A
trace's row carries the hash set of its span ids (16 bytes each), and the span counts
of a page of traces read a granule or more for each of its traces, scattered over the
key, deserializing every set in them. Over 5M spans (10 a trace), one page's counts
took 52 ms with 1,024-row granules (about 170 KB), 20 ms with 16 KiB ones, 14 ms with
4 KiB ones (about 20 rows) and 13 ms with 2 KiB ones, where summed counts took 13-14 ms;
4 KiB keeps the primary key in memory at 0.5 MB for those 500,000 traces. Bytes rather
than rows, so that the traces of many spans make granules of fewer rows."""


_SPAN_IDS_MERGE_BLOCK = _PAGE_GRANULARITY
"""Rows a merge of the span ids reads from each part at a time (8,192 by default). An
aggregating table is merged with every column at once, and each row read holds a
trace's set of ids: merging 20 parts of 20,000 traces took 17 MB above the engine's
memory with 8,192 rows, 9-10 MB with 1,024 (an ingesting worker merges such parts
beside its inserts, within the same memory)."""


def _span_ids_table(db: str, name: str, days: int, window: int) -> str:
    settings = (
        f"{_table_settings(window, _PAGE_GRANULARITY)}, "
        f"index_granularity_bytes = {_SPAN_IDS_GRANULE_BYTES}, "
        f"merge_max_block_size = {_SPAN_IDS_MERGE_BLOCK}, {_COLUMN_BY_COLUMN_MERGES}"
    )
    return f"""CREATE TABLE IF NOT EXISTS {db}.{name} (
    project_id LowCardinality(String),
    deployment_id LowCardinality(String),
    trace_id String,
    span_ids AggregateFunction(uniqExact, String),
    first_start SimpleAggregateFunction(min, {_TS})
)
ENGINE = AggregatingMergeTree
ORDER BY (project_id, deployment_id, trace_id)
{_ttl("first_start", days)}
{settings}"""


_BACKFILL_IN_KEY_ORDER = (
    "SETTINGS optimize_aggregation_in_order = 1, max_threads = 1, max_block_size = 4096, "
    "min_insert_block_size_rows = 16384"
)
"""The back-fill groups the spans along their key, whose prefix the groups are, a few
thousand traces at a time, and writes parts of 16,384 traces: grouping every trace at
once held a hash set per trace, 1.3 GB at the peak for 5M spans (500,000 traces),
where this holds about 140 MB above the engine's own, in the same 9 s."""


def _span_ids(db: str, days: int, window: int) -> list[str]:
    """The distinct span ids per trace (migration 5), replacing the summed counts: the
    exporter of a server retries a batch, and a span stored twice (until a merge of
    the spans table collapses it, which may never come) counted twice in the sums.
    A view keeps the ids of inserted spans as ``uniqExact`` states that merge into
    the set of a trace's ids, so a page of traces still gets its span counts by
    primary key (``uniqExactMerge``), and a span inserted again adds nothing.

    The spans already stored are back-filled after the view starts. Spans inserted
    meanwhile reach the table through both, and a back-fill run again (a migration
    cut short) repeats every span: harmless, a set holds an id once. Then the summed
    counts and their view go (a reader of this version no longer reads them)."""
    select = f"""SELECT project_id, deployment_id, trace_id, uniqExactState(span_id) AS span_ids,
       min(start_time) AS first_start
FROM {db}.{SPANS}
GROUP BY project_id, deployment_id, trace_id"""
    return [
        _span_ids_table(db, SPAN_IDS, days, window),
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{SPAN_IDS}_view TO {db}.{SPAN_IDS} AS\n"
        f"{select}",
        f"INSERT INTO {db}.{SPAN_IDS}\n{select}\n{_BACKFILL_IN_KEY_ORDER}",
        f"DROP VIEW IF EXISTS {db}.{SPAN_COUNTS}_view SYNC",
        f"DROP TABLE IF EXISTS {db}.{SPAN_COUNTS} SYNC",
    ]


# --- migrations -----------------------------------------------------------------------


@dataclass(frozen=True)
class Rebuild:
    """A table made again, because ClickHouse changes neither the sorting key nor the
    granularity of a table in place: the views that read or write it are dropped, its
    rows copied into the new table, which takes its name, and the views created again
    (by the migration's statements)."""

    table: str
    sorting_key: str
    granularity: int
    create: str
    """``CREATE TABLE`` of the new table, named ``{table}_rebuilt``."""
    views: tuple[str, ...]


def _view_statements(statements: list[str], db: str, views: tuple[str, ...]) -> list[str]:
    prefix = f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}."
    named = {f"{prefix}{v}" for v in views}
    return [s for s in statements if " ".join(s.split()[:7]) in named]


_TRACE_VIEWS = (
    "mastra_admin_ingest_load_traces",
    "mastra_admin_traces_from_spans",
    HOURLY_VIEWS[TRACES],
)
_SPAN_COUNT_VIEWS = (f"{SPAN_COUNTS}_view",)


_COLUMN_BY_COLUMN_MERGES = (
    "vertical_merge_algorithm_min_rows_to_activate = 1, "
    "vertical_merge_algorithm_min_columns_to_activate = 1"
)
"""Merges read and write one column at a time, whatever the parts' size: a merge of
the small parts of an ingesting worker otherwise read every column of every part at
once (with 8 MiB inserts that was 30-50 MB of the worker's peak, and slower)."""

_HOURLY_TABLES = tuple(f"{v}_data" for v in HOURLY_VIEWS.values())
_TTL_TABLES = (*TABLES, *_HOURLY_TABLES, SPAN_IDS)
_MERGED_TABLES = (*_TTL_TABLES, REJECTS)
"""The tables given column-by-column merges: migration 4 altered those it found, and
the span ids table (migration 5) is created so. (ClickHouse merges the summing and
aggregating ones a block of rows at a time all the same.)"""
_MIGRATION_4_TABLES = (*TABLES, *_HOURLY_TABLES, SPAN_COUNTS, REJECTS)
"""The tables migration 4 alters: those of migrations 1-3, whatever came later."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str

    def statements(self, db: str, days: int, log_days: int, window: int) -> list[str]:
        if self.version == 1:
            events = _event_tables(db, days, log_days, window)
            return [
                *events,
                *_hourly_views(db, days, log_days, window),
                *_pipeline(db, window, events, parse_version=1),
            ]
        if self.version == 2:
            return _span_counts(db, days, window)
        if self.version == 3:
            events = _event_tables(db, days, log_days, window)
            views = [
                *_hourly_views(db, days, log_days, window),
                *_pipeline(db, window, events, parse_version=1),
                *_span_counts(db, days, window),
            ]
            return _view_statements(views, db, _TRACE_VIEWS + _SPAN_COUNT_VIEWS)
        if self.version == 4:
            # In place and at once (no moment without a parsing view, when lines
            # inserted by another worker would be dropped by the Null landing table).
            views = [
                f"ALTER TABLE {db}.mastra_admin_ingest_parse_{parser.name} "
                f"MODIFY QUERY {_parse_view_query(parser, db, 2)}"
                for parser in PARSERS
            ]
            return views + [
                f"ALTER TABLE {db}.{table} MODIFY SETTING {_COLUMN_BY_COLUMN_MERGES}"
                for table in _MIGRATION_4_TABLES
            ]
        if self.version == 5:
            return _span_ids(db, days, window)
        raise ValueError(f"unknown migration {self.version}")  # pragma: no cover

    def rebuilds(self, db: str, days: int, window: int) -> list[Rebuild]:
        """Tables to make again before the statements run."""
        if self.version != 3:
            return []
        settings = _table_settings(window, _PAGE_GRANULARITY)
        return [
            Rebuild(
                TRACES,
                _TRACES_KEY,
                _PAGE_GRANULARITY,
                _traces_table(db, f"{TRACES}_rebuilt", days, settings, _TRACES_KEY),
                _TRACE_VIEWS,
            ),
            Rebuild(
                SPAN_COUNTS,
                "project_id, deployment_id, trace_id",
                _PAGE_GRANULARITY,
                _span_counts_table(db, f"{SPAN_COUNTS}_rebuilt", days, settings),
                _SPAN_COUNT_VIEWS,
            ),
        ]

    def checksum(self) -> str:
        parts = self.statements("db", 1, 1, 100)
        parts += [r.create for r in self.rebuilds("db", 1, 100)]
        text = "\n".join(parts)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events, hourly views and the ingestion pipeline"),
    Migration(2, "span counts per trace"),
    Migration(3, "traces in time order per project, finer granules for trace pages"),
    Migration(4, "parsing views read each record into one tuple; merges column by column"),
    Migration(5, "distinct span ids per trace instead of summed span counts"),
)


@dataclass
class SchemaStatus:
    """What ``migrate --check`` reports."""

    applied: list[int]
    pending: list[Migration]
    missing_objects: list[str]
    ttl_drift: list[str]

    @property
    def up_to_date(self) -> bool:
        return not self.pending and not self.missing_objects and not self.ttl_drift


class Schema:
    """Creates, checks, migrates and drops the schema in one database."""

    def __init__(
        self,
        transport: Transport,
        database: str,
        *,
        retention_days: int = 90,
        log_retention_days: int = 30,
        dedup_window: int = 1000,
    ) -> None:
        self.transport = transport
        self.db = database
        self.retention_days = retention_days
        self.log_retention_days = log_retention_days
        self.dedup_window = dedup_window

    def table(self, name: str) -> str:
        return f"{self.db}.{name}"

    def expected_objects(self) -> list[str]:
        names = [*TABLES, *HOURLY_VIEWS.values(), *(f"{v}_data" for v in HOURLY_VIEWS.values())]
        names += [REJECTS, "mastra_admin_traces_from_spans", SPAN_IDS, f"{SPAN_IDS}_view"]
        for parser in PARSERS:
            names += [
                landing_table(parser.name),
                f"mastra_admin_ingest_parsed_{parser.name}",
                f"mastra_admin_ingest_parse_{parser.name}",
                f"mastra_admin_ingest_load_{parser.name}",
                f"mastra_admin_ingest_reject_{parser.name}",
            ]
        return names

    def _ttl_days(self, table: str) -> int:
        return (
            self.log_retention_days
            if table in (LOGS, HOURLY_VIEWS[LOGS] + "_data")
            else (self.retention_days)
        )

    async def _existing(self) -> dict[str, str]:
        rows = await self.transport.fetch(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
            {"db": self.db},
        )
        return {str(r["name"]): str(r["engine_full"]) for r in rows}

    async def _applied(self) -> list[int]:
        rows = await self.transport.fetch(
            f"SELECT version FROM {self.db}.{MIGRATIONS_TABLE} ORDER BY version"
        )
        return [int(r["version"]) for r in rows]

    async def status(self) -> SchemaStatus:
        """Applied and pending migrations, missing objects, tables whose TTL differs
        from the settings. Changes nothing."""
        existing = await self._existing()
        applied = await self._applied() if MIGRATIONS_TABLE in existing else []
        pending = [m for m in MIGRATIONS if m.version not in applied]
        missing = [n for n in self.expected_objects() if n not in existing] if applied else []
        drift = []
        for name in self._ttl_tables():
            engine = existing.get(name)
            if engine is not None and f"toIntervalDay({self._ttl_days(name)})" not in engine:
                drift.append(name)
        return SchemaStatus(applied, pending, missing, drift)

    def _ttl_tables(self) -> list[str]:
        return list(_TTL_TABLES)

    async def migrate(self) -> list[Migration]:
        """Apply pending migrations in order, then bring TTLs to the settings.

        Every statement is idempotent (``IF NOT EXISTS``), so a migration cut short
        is completed by the next run; it is recorded once all its statements ran."""
        await self.transport.execute(f"CREATE DATABASE IF NOT EXISTS {self.db}")
        await self.transport.execute(
            f"""CREATE TABLE IF NOT EXISTS {self.db}.{MIGRATIONS_TABLE} (
    version UInt32,
    name String,
    checksum String,
    applied_at {_TS}
)
ENGINE = ReplacingMergeTree
ORDER BY version"""
        )
        applied = set(await self._applied())
        done: list[Migration] = []
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            _log.info(
                "clickhouse.migration.started", version=migration.version, name=migration.name
            )
            for rebuild in migration.rebuilds(self.db, self.retention_days, self.dedup_window):
                await self._rebuild(rebuild)
            for statement in migration.statements(
                self.db, self.retention_days, self.log_retention_days, self.dedup_window
            ):
                await self.transport.execute(statement)
            await self.transport.execute(
                f"INSERT INTO {self.db}.{MIGRATIONS_TABLE} (version, name, checksum, applied_at) "
                "VALUES ({v:UInt32}, {n:String}, {c:String}, {t:DateTime64(3, 'UTC')})",
                {
                    "v": migration.version,
                    "n": migration.name,
                    "c": migration.checksum(),
                    "t": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.000"),
                },
            )
            done.append(migration)
            _log.info("clickhouse.migration.finished", version=migration.version)
        await self._sync_ttl()
        return done

    async def _rebuild(self, rebuild: Rebuild) -> None:
        """Make ``rebuild.table`` again with its rows. Each step can run again: a run cut
        short is finished by the next one (the old table is dropped only after the new
        one took its name). Rows inserted into the table while it is copied, by another
        process, would be lost: migrate before ingestion starts (``init()`` does)."""
        db, table = self.db, rebuild.table
        await self.transport.execute(f"DROP TABLE IF EXISTS {db}.{table}_replaced SYNC")
        rows = await self.transport.fetch(
            "SELECT sorting_key, engine_full FROM system.tables "
            "WHERE database = {db:String} AND name = {t:String}",
            {"db": db, "t": table},
        )
        if rows and (
            rows[0]["sorting_key"] == rebuild.sorting_key
            and f"index_granularity = {rebuild.granularity}," in str(rows[0]["engine_full"])
        ):
            return
        _log.info("clickhouse.table.rebuilding", table=table)
        for view in rebuild.views:
            await self.transport.execute(f"DROP VIEW IF EXISTS {db}.{view} SYNC")
        await self.transport.execute(f"DROP TABLE IF EXISTS {db}.{table}_rebuilt SYNC")
        await self.transport.execute(rebuild.create)
        await self.transport.execute(
            f"INSERT INTO {db}.{table}_rebuilt SELECT * FROM {db}.{table} "
            "SETTINGS insert_deduplicate = 0"
        )
        await self.transport.execute(
            f"RENAME TABLE {db}.{table} TO {db}.{table}_replaced, "
            f"{db}.{table}_rebuilt TO {db}.{table}"
        )
        await self.transport.execute(f"DROP TABLE IF EXISTS {db}.{table}_replaced SYNC")
        _log.info("clickhouse.table.rebuilt", table=table)

    async def _sync_ttl(self) -> None:
        existing = await self._existing()
        for name in self._ttl_tables():
            engine = existing.get(name)
            days = self._ttl_days(name)
            if engine is None or f"toIntervalDay({days})" in engine:
                continue
            column = _TTL_COLUMNS.get(name, "hour" if name.endswith("_data") else "timestamp")
            _log.info("clickhouse.ttl.changed", table=name, days=days)
            await self.transport.execute(
                f"ALTER TABLE {self.db}.{name} MODIFY {_ttl(column, days)} "
                "SETTINGS materialize_ttl_after_modify = 0"
            )

    async def drop(self) -> None:
        """Remove the database and everything in it (tests, resets)."""
        await self.transport.execute(f"DROP DATABASE IF EXISTS {self.db} SYNC")
