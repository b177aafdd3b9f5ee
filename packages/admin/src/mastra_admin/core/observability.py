"""Observability provider interfaces: queries over stored events, and ingestion.

An observability backend (kind ``observability``) gives the core and the server a
query provider and an ingestion worker that moves files from file storage into the
store. Every adapter runs ``mastra_admin.core.testing.ObservabilityQueryConformance``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mastra_admin.core.events import (
    Feedback,
    Log,
    LogLevel,
    Metric,
    Score,
    Span,
    SpanStatus,
    Trace,
    TraceTree,
)
from mastra_admin.core.file_storage import FileStorageProvider
from mastra_admin.core.models import Page

__all__ = [
    "FeedbackQuery",
    "IngestionStatus",
    "IngestionWorker",
    "LogQuery",
    "MetricQuery",
    "ObservabilityBackend",
    "ObservabilityQueryProvider",
    "ProcessingResult",
    "ScoreQuery",
    "SpanQuery",
    "TimeBucket",
    "TimeSeriesQuery",
    "TraceQuery",
]


def _in_store_range(value: datetime | None) -> datetime | None:
    """Time bounds must be timezone-aware UTC instants the stores can represent."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return value


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2261, 12, 31, tzinfo=UTC)
"""The instants every observability store can hold (ClickHouse DateTime64 covers
them); bounds outside are refused as invalid input instead of failing in a query."""

Instant = Annotated[datetime, AfterValidator(_in_store_range)]


class _Query(BaseModel):
    """Filters shared by every list: project, deployment, time range, page."""

    model_config = ConfigDict(extra="forbid")

    project_id: str | None = None
    deployment_id: str | None = None
    start: Instant | None = None
    end: Instant | None = None
    limit: int = Field(default=50, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _range(self) -> _Query:
        if self.start and self.end and self.start > self.end:
            raise ValueError("start must not be after end")
        return self


class TraceQuery(_Query):
    trace_id: str | None = None
    status: SpanStatus | None = None
    name: str | None = Field(default=None, description="substring of the trace name")


class SpanQuery(_Query):
    trace_id: str | None = None
    parent_span_id: str | None = None
    span_type: str | None = None
    status: SpanStatus | None = None
    name: str | None = None


class LogQuery(_Query):
    level: LogLevel | None = Field(default=None, description="this level and above")
    trace_id: str | None = None
    span_id: str | None = None
    text: str | None = Field(default=None, description="substring of the message")


class MetricQuery(_Query):
    name: str | None = None


class ScoreQuery(_Query):
    name: str | None = None
    trace_id: str | None = None
    min_value: float | None = None
    max_value: float | None = None


class FeedbackQuery(_Query):
    trace_id: str | None = None
    feedback_type: str | None = None


class TimeSeriesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: str | None = None
    deployment_id: str | None = None
    start: Instant
    end: Instant
    interval_s: int = Field(default=3600, ge=1, le=31 * 86400)
    signal: Literal["traces", "spans", "logs"] = "traces"

    @model_validator(mode="after")
    def _range(self) -> TimeSeriesQuery:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        if (self.end - self.start).total_seconds() / self.interval_s > 10_000:
            raise ValueError("too many buckets: widen interval_s")
        return self


class TimeBucket(BaseModel):
    """One interval: event count, errors, error rate and latency percentiles (ms)."""

    start: datetime
    count: int
    errors: int
    error_rate: float
    p50_ms: float | None = None
    p95_ms: float | None = None


class ObservabilityQueryProvider(ABC):
    @abstractmethod
    async def list_traces(self, query: TraceQuery) -> Page[Trace]:
        """Newest first."""

    @abstractmethod
    async def get_trace(
        self, trace_id: str, *, project_id: str | None = None
    ) -> TraceTree | None: ...

    @abstractmethod
    async def list_spans(self, query: SpanQuery) -> Page[Span]: ...

    @abstractmethod
    async def list_logs(self, query: LogQuery) -> Page[Log]:
        """Newest first."""

    @abstractmethod
    async def list_metrics(self, query: MetricQuery) -> Page[Metric]: ...

    @abstractmethod
    async def list_scores(self, query: ScoreQuery) -> Page[Score]: ...

    @abstractmethod
    async def list_feedback(self, query: FeedbackQuery) -> Page[Feedback]: ...

    @abstractmethod
    async def time_series(self, query: TimeSeriesQuery) -> list[TimeBucket]:
        """One bucket per interval from ``start`` to ``end`` (empty ones included)."""


class ProcessingResult(BaseModel):
    files_processed: int = 0
    events_ingested: int = 0
    events_by_type: dict[str, int] = Field(default_factory=dict)
    bad_lines: int = 0
    errors: list[str] = Field(default_factory=list)
    duration_ms: float = 0.0


class IngestionStatus(BaseModel):
    running: bool
    processing: bool
    started_at: datetime | None = None
    last_processed_at: datetime | None = None
    total_files_processed: int = 0
    total_events_ingested: int = 0
    total_bad_lines: int = 0
    pending_files: int | None = None
    lag_seconds: float | None = None
    last_error: str | None = None


class IngestionWorker(ABC):
    """Moves events from file storage (and build dirs) into the observability store."""

    @abstractmethod
    async def start(self) -> None:
        """Begin polling in the background."""

    @abstractmethod
    async def stop(self, *, drain: bool = True) -> None:
        """Stop polling; with ``drain`` finish the files in hand first."""

    @abstractmethod
    async def process_once(self) -> ProcessingResult:
        """One pass over every source; what is ingested is durable when it returns."""

    @abstractmethod
    def status(self) -> IngestionStatus: ...


class ObservabilityBackend(ABC):
    """What an observability provider gives: a query provider and ingestion."""

    type: ClassVar[str]

    query: ObservabilityQueryProvider

    @abstractmethod
    async def init(self) -> None:
        """Create or migrate the schema."""

    @abstractmethod
    def ingestion_worker(
        self, file_storage: FileStorageProvider, *, build_dirs: list[str] | None = None
    ) -> IngestionWorker:
        """A worker reading ``file_storage`` and the per-build observability dirs
        under each of ``build_dirs``."""

    @abstractmethod
    async def ping(self) -> None:
        """``Unavailable`` when the store does not answer."""

    @abstractmethod
    async def close(self) -> None: ...
