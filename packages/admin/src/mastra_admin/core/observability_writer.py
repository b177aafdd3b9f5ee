"""The observability writer: events into JSONL files in file storage, batched.

Files are named ``{type_folder}/{project_id}/{timestamp}_{uuid}.jsonl`` (for
example ``spans/3f2c.../20261121T224051123456Z_9b1d....jsonl``), one JSON object a
line, written atomically, so that the ingestion worker only ever sees whole files.
``write_batch`` writes one batch as one file (the HTTP collector's path);
``ObservabilityWriter`` gathers events per (type, project) and writes a file when a
batch is full, when it is old enough, or when asked to flush.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from types import TracebackType
from typing import Any, Self

import structlog
from pydantic import BaseModel

from mastra_admin.core.errors import InvalidInput, MastraAdminError, Unavailable
from mastra_admin.core.events import (
    EventType,
    Feedback,
    Log,
    Metric,
    ObservabilityEvent,
    Score,
    Span,
    Trace,
)
from mastra_admin.core.file_storage import FileStorageProvider

__all__ = ["ObservabilityWriter", "batch_path", "encode_records", "write_batch"]

_log = structlog.get_logger("mastra_admin.core.observability_writer")

MIB = 1024 * 1024
UNKNOWN_PROJECT = "unknown"
_PROJECT_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

EventLike = ObservabilityEvent | Mapping[str, Any]

_MODEL_TYPES: tuple[tuple[type[BaseModel], EventType], ...] = (
    (Span, EventType.SPAN),
    (Trace, EventType.TRACE),
    (Log, EventType.LOG),
    (Metric, EventType.METRIC),
    (Score, EventType.SCORE),
    (Feedback, EventType.FEEDBACK),
)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _encode(record: EventLike) -> bytes:
    data = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    return text.encode("utf-8") + b"\n"


def encode_records(records: Iterable[EventLike]) -> bytes:
    """JSON Lines: one compact object per line, each line ending in ``\\n``."""
    return b"".join(_encode(record) for record in records)


def _project_folder(project_id: str | None) -> str:
    if not project_id:
        return UNKNOWN_PROJECT
    if not _PROJECT_ID_RE.fullmatch(project_id):
        raise InvalidInput(
            "a project id may hold only letters, digits, '_', '.' and '-'",
            details={"field": "project_id"},
        )
    return project_id


def _event_type(value: EventType | str) -> EventType:
    try:
        return EventType(value)
    except ValueError as exc:
        raise InvalidInput(
            f"unknown event type {value!r}", details={"field": "event_type"}
        ) from exc


def batch_path(event_type: EventType | str, project_id: str | None) -> str:
    """A new file name for a batch: sortable UTC time to the microsecond, then a uuid."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    kind = _event_type(event_type)
    return f"{kind.folder}/{_project_folder(project_id)}/{stamp}_{uuid.uuid4().hex}.jsonl"


async def write_batch(
    file_storage: FileStorageProvider,
    event_type: EventType | str,
    project_id: str | None,
    records: list[dict[str, Any]] | list[EventLike],
) -> str:
    """Write one accepted batch as one file, atomically and durably; return its path.

    ``Unavailable`` (the storage is full or failing) means nothing was written.
    """
    path = batch_path(event_type, project_id)
    await file_storage.write(path, encode_records(records))
    return path


@dataclass
class _Batch:
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    opened_at: float = 0.0


class ObservabilityWriter:
    """Batches events per (type, project) and writes them as JSONL files.

    A batch is written when it holds ``batch_size`` events, when the next event would
    make its file larger than ``max_file_bytes`` (rotation: files stay below it unless
    one event alone is bigger), when it is ``flush_interval_s`` old (with ``start()``
    running the background flush), and on ``flush()`` / ``shutdown()``. The caller
    that fills a batch waits for its file to be written, which is the back-pressure.
    A failed write keeps the events for the next attempt: nothing is dropped.
    """

    def __init__(
        self,
        file_storage: FileStorageProvider,
        *,
        batch_size: int = 1000,
        flush_interval_s: float = 5.0,
        max_file_bytes: int = 10 * MIB,
    ) -> None:
        if batch_size < 1:
            raise InvalidInput("batch_size must be at least 1", details={"field": "batch_size"})
        if flush_interval_s <= 0:
            raise InvalidInput(
                "flush_interval_s must be positive", details={"field": "flush_interval_s"}
            )
        if max_file_bytes < 1:
            raise InvalidInput(
                "max_file_bytes must be positive", details={"field": "max_file_bytes"}
            )
        self.file_storage = file_storage
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_file_bytes = max_file_bytes
        self._batches: dict[tuple[EventType, str], _Batch] = {}
        self._inflight: set[asyncio.Task[str]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self.files_written = 0
        self.events_written = 0
        self.write_errors = 0

    # --- recording -------------------------------------------------------------

    async def record_span(self, span: Span | Mapping[str, Any]) -> None:
        await self.record(EventType.SPAN, span)

    async def record_trace(self, trace: Trace | Mapping[str, Any]) -> None:
        await self.record(EventType.TRACE, trace)

    async def record_log(self, log: Log | Mapping[str, Any]) -> None:
        await self.record(EventType.LOG, log)

    async def record_metric(self, metric: Metric | Mapping[str, Any]) -> None:
        await self.record(EventType.METRIC, metric)

    async def record_score(self, score: Score | Mapping[str, Any]) -> None:
        await self.record(EventType.SCORE, score)

    async def record_feedback(self, feedback: Feedback | Mapping[str, Any]) -> None:
        await self.record(EventType.FEEDBACK, feedback)

    async def record_events(
        self, events: Iterable[EventLike], *, event_type: EventType | str | None = None
    ) -> None:
        """Record many events; a model's type comes from its class, a plain mapping's
        from ``event_type`` (which it then needs)."""
        default = _event_type(event_type) if event_type is not None else None
        for event in events:
            kind = default
            if isinstance(event, BaseModel):
                kind = next((t for cls, t in _MODEL_TYPES if isinstance(event, cls)), default)
            if kind is None:
                raise InvalidInput(
                    "a plain event needs event_type", details={"field": "event_type"}
                )
            await self.record(kind, event)

    async def record(self, event_type: EventType | str, event: EventLike) -> None:
        """Add one event to its batch, writing the batch when it is full."""
        raw_project = event.project_id if isinstance(event, BaseModel) else event.get("project_id")
        await self.record_encoded(
            event_type, str(raw_project) if raw_project else None, [_encode(event)]
        )

    async def record_encoded(
        self, event_type: EventType | str, project_id: str | None, lines: Sequence[bytes]
    ) -> None:
        """Add events already encoded, each one JSON line ending in ``\\n``, from a
        producer that builds its lines itself for speed (the Caddy router's access
        log); ``project_id`` must be the one the lines hold. One malformed line refuses
        them all before any is taken."""
        if self._closed:
            raise Unavailable("the observability writer is shut down")
        for line in lines:
            if len(line) < 2 or line.find(b"\n") != len(line) - 1:
                raise InvalidInput(
                    "an encoded event is one line ending in a newline", details={"field": "line"}
                )
        kind = _event_type(event_type)
        key = (kind, _project_folder(project_id))
        loop = asyncio.get_running_loop()
        for line in lines:
            pending: list[asyncio.Task[str]] = []
            batch = self._batches.get(key)
            if batch is not None and batch.lines and batch.size + len(line) > self.max_file_bytes:
                pending.append(self._write_batch_of(key))  # rotate before it grows too big
            batch = self._batches.setdefault(key, _Batch())
            if not batch.lines:
                batch.opened_at = loop.time()
            batch.lines.append(line)
            batch.size += len(line)
            if len(batch.lines) >= self.batch_size or batch.size >= self.max_file_bytes:
                pending.append(self._write_batch_of(key))
            for task in pending:
                await asyncio.shield(task)

    @property
    def pending_events(self) -> int:
        """Events recorded but not yet in a written file."""
        return sum(len(b.lines) for b in self._batches.values())

    # --- writing ---------------------------------------------------------------

    def _write_batch_of(self, key: tuple[EventType, str]) -> asyncio.Task[str]:
        """Take the batch out (synchronously, so no event is taken twice) and write it."""
        batch = self._batches.pop(key)
        task = asyncio.create_task(self._write(key, batch))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return task

    async def _write(self, key: tuple[EventType, str], batch: _Batch) -> str:
        kind, project = key
        path = batch_path(kind, project)
        try:
            await self.file_storage.write(path, b"".join(batch.lines))
        except BaseException as exc:
            self._put_back(key, batch)
            self.write_errors += 1
            if isinstance(exc, MastraAdminError | OSError):
                _log.warning(
                    "observability_writer.write_failed",
                    event_type=kind.value,
                    project_id=project,
                    events=len(batch.lines),
                    error=str(exc),
                )
            raise
        self.files_written += 1
        self.events_written += len(batch.lines)
        _log.debug(
            "observability_writer.file_written",
            path=path,
            events=len(batch.lines),
            bytes=batch.size,
        )
        return path

    def _put_back(self, key: tuple[EventType, str], batch: _Batch) -> None:
        """Return unwritten events to the front of their batch, oldest first."""
        current = self._batches.get(key)
        if current is None:
            self._batches[key] = batch
            return
        current.lines[:0] = batch.lines
        current.size += batch.size
        current.opened_at = min(current.opened_at, batch.opened_at)

    async def flush(self) -> None:
        """Write every batch, and wait for writes already under way.

        When it returns, every event recorded before the call is in a file. Raises
        the first write error (the events stay batched for the next attempt).
        """
        for key in list(self._batches):
            if self._batches[key].lines:
                self._write_batch_of(key)
        await self._wait_inflight()

    async def _flush_old(self) -> None:
        now = asyncio.get_running_loop().time()
        for key, batch in list(self._batches.items()):
            if batch.lines and now - batch.opened_at >= self.flush_interval_s:
                self._write_batch_of(key)
        await self._wait_inflight()

    async def _wait_inflight(self) -> None:
        while self._inflight:
            results = await asyncio.gather(*list(self._inflight), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Begin the background flush (idempotent)."""
        if self._closed:
            raise Unavailable("the observability writer is shut down")
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop(), name="observability-writer")

    async def _flush_loop(self) -> None:
        tick = min(self.flush_interval_s / 2, 1.0)
        while True:
            await asyncio.sleep(tick)
            try:
                await self._flush_old()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the events stay batched; try again next tick
                _log.warning("observability_writer.flush_failed", error=str(exc))

    async def shutdown(self) -> None:
        """Stop the background flush and write everything; refuse events from now on.

        If the storage fails now, the error is raised and the events are still held
        (``flush()`` may be called again)."""
        self._closed = True
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
            self._flusher = None
        await self.flush()
        _log.info(
            "observability_writer.shutdown",
            files_written=self.files_written,
            events_written=self.events_written,
        )

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()
