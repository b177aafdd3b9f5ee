"""Observability events: what Mastra servers emit and what the query provider returns.

Timestamps are UTC. ``project_id`` and ``deployment_id`` are set on every event
(from the collector token, the build directory or the record itself).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "EventType",
    "Feedback",
    "Log",
    "LogLevel",
    "Metric",
    "ObservabilityEvent",
    "Score",
    "Span",
    "SpanStatus",
    "Trace",
    "TraceTree",
]


class EventType(StrEnum):
    TRACE = "trace"
    SPAN = "span"
    LOG = "log"
    METRIC = "metric"
    SCORE = "score"
    FEEDBACK = "feedback"

    @property
    def folder(self) -> str:
        """The folder of this type in file storage (``spans``, ``logs`` ...)."""
        return f"{self.value}s" if self is not EventType.FEEDBACK else "feedback"


class SpanStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    UNSET = "unset"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"
    FATAL = "fatal"


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")

    project_id: str = ""
    deployment_id: str = ""


class Span(_Event):
    trace_id: str
    span_id: str
    parent_span_id: str | None = None
    name: str
    span_type: str = ""
    kind: str = "internal"
    status: SpanStatus = SpanStatus.UNSET
    entity_type: str | None = None
    entity_id: str | None = None
    entity_name: str | None = None
    start_time: datetime
    end_time: datetime | None = None
    duration_ms: float | None = None
    is_root: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    events: list[dict[str, Any]] = Field(default_factory=list)


class Trace(_Event):
    trace_id: str
    name: str
    status: SpanStatus = SpanStatus.UNSET
    start_time: datetime
    end_time: datetime | None = None
    duration_ms: float | None = None
    span_count: int | None = None
    input: Any = None
    output: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Log(_Event):
    id: str
    level: LogLevel = LogLevel.INFO
    message: str
    timestamp: datetime
    trace_id: str | None = None
    span_id: str | None = None
    source: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict)


class Metric(_Event):
    id: str
    name: str
    type: Literal["counter", "gauge", "histogram"] = "gauge"
    value: float
    timestamp: datetime
    labels: dict[str, str] = Field(default_factory=dict)
    trace_id: str | None = None
    span_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Score(_Event):
    id: str
    name: str
    value: float
    timestamp: datetime
    trace_id: str | None = None
    span_id: str | None = None
    scorer: str | None = None
    reason: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Feedback(_Event):
    id: str
    timestamp: datetime
    trace_id: str | None = None
    span_id: str | None = None
    source: str | None = None
    feedback_type: str = ""
    value: Any = None
    comment: str | None = None
    user_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


ObservabilityEvent = Trace | Span | Log | Metric | Score | Feedback


class TraceTree(BaseModel):
    """One trace with its spans nested: ``roots`` are spans without a (known) parent."""

    trace: Trace
    spans: list[Span]
    children: dict[str, list[str]] = Field(
        default_factory=dict, description="span id -> ids of its child spans, by start time"
    )
    roots: list[str] = Field(default_factory=list)
