"""The ingestion worker: files in storage and build folders into ClickHouse, exactly once.

Each pass: repeat any journaled batch (ClickHouse drops it if it already went in),
claim new files and insert them in batches, and tail the build folders, the two side
by side (each insert has a CPU and an engine session of its own). Batches are of up
to ``chunk_bytes`` while both sources insert, up to twice that when one is alone.
Nothing is marked done before ClickHouse acknowledged the insert. When ClickHouse is
unavailable the pass stops, the files stay where they are, and the background loop
waits longer each time (up to ``max_backoff_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import platform
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog

from mastra_admin.core.errors import MastraAdminError, Unavailable
from mastra_admin.core.file_storage import FileStorageProvider
from mastra_admin.core.observability import IngestionStatus, IngestionWorker, ProcessingResult
from mastra_admin.observability.clickhouse._batch import Batch, Chunk
from mastra_admin.observability.clickhouse._build_dirs import BuildDir, find_build_dirs
from mastra_admin.observability.clickhouse._runtime import looks_pretty, records
from mastra_admin.observability.clickhouse._schema import (
    PARSER_OF_SIGNAL,
    REJECTS,
    landing_table,
)
from mastra_admin.observability.clickhouse._settings import ClickHouseSettings
from mastra_admin.observability.clickhouse._storage_files import Journal, StorageFiles
from mastra_admin.observability.clickhouse._transport import ClickHouseError, Transport

__all__ = ["ClickHouseIngestionWorker"]

_log = structlog.get_logger("mastra_admin.observability.clickhouse")

MAX_ATTEMPTS = 3
"""Inserts ClickHouse refuses (not outages) before a batch is set aside."""


_M_MMAP_THRESHOLD = -3
LARGE_BUFFER_BYTES = 1024 * 1024
"""Buffers from this size up are mapped on their own and returned to the system when
freed (see ``_return_large_buffers``)."""
_large_buffers_returned = False


def _return_large_buffers() -> None:
    """Make glibc give the chunks the worker reads (up to ``chunk_bytes`` each) back
    to the system when they are freed.

    glibc maps a large block on its own only while it is bigger than a threshold that
    rises to the size of the last such block freed; after the first chunk every
    later one came from the heap of whichever thread read it, and stayed there: about
    100 MB of a worker's private memory held nothing. A fixed threshold stops that
    (once per process; elsewhere than glibc nothing is changed)."""
    global _large_buffers_returned
    if _large_buffers_returned:
        return
    _large_buffers_returned = True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, LARGE_BUFFER_BYTES)
    except (OSError, AttributeError):  # pragma: no cover - not glibc after all
        _log.debug("ingest.mallopt_unavailable")


class InsertBudget:
    """The bytes of lines the worker holds for its inserts at once (read, then handed
    to the engine), shared by its sources: one alone may take all of it; while another
    is at work (``sharing``), each takes half.

    An insert's memory in the engine follows its size, so this bounds the worker's
    memory whatever the sources do; and a source alone (the collector files once the
    build folders caught up, say) makes half as many inserts, each of which costs a
    fixed 60-70 ms however small."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._held: dict[str, int] = {}
        self._sharing: dict[str, int] = {}
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def sharing(self, source: str) -> AsyncIterator[None]:
        """``source`` is at work (between its rooms too) for the block."""
        self._sharing[source] = self._sharing.get(source, 0) + 1
        try:
            yield
        finally:
            self._sharing[source] -= 1
            if not self._sharing[source]:
                del self._sharing[source]
            async with self._changed:
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def room(self, source: str) -> AsyncIterator[int]:
        """Bytes ``source`` may read and insert now, held until the block ends."""
        async with self._changed:
            while True:
                others = any(name != source for name in (*self._held, *self._sharing))
                share = self.total // 2 if others else self.total
                if self.total - sum(self._held.values()) >= share:
                    break
                await self._changed.wait()
            self._held[source] = share
        try:
            yield share
        finally:
            async with self._changed:
                del self._held[source]
                self._changed.notify_all()


def _runtime_records(chunk: Chunk, token: str) -> Chunk:
    """A runtime chunk with its pino-pretty records made JSON lines (``_runtime``);
    the same chunk when it holds none (JSON lines and plain text pass as they are)."""
    buffers = list(chunk.take())
    if not any(looks_pretty(buffer) for buffer in buffers):
        return Chunk(buffers)
    return Chunk([records(b"".join(buffers), token)])


def _event_type(signal: str) -> str:
    return "logs" if signal == "runtime" else signal


class ClickHouseIngestionWorker(IngestionWorker):
    """Reads ``file_storage`` and the build folders under ``build_dirs``."""

    def __init__(
        self,
        transport: Transport,
        database: str,
        file_storage: FileStorageProvider,
        *,
        settings: ClickHouseSettings,
        worker_id: str,
        build_dirs: list[str] | None = None,
    ) -> None:
        _return_large_buffers()
        self.transport = transport
        self.database = database
        self.settings = settings
        self.worker_id = worker_id
        self.build_roots = list(build_dirs or [])
        self.files = StorageFiles(
            file_storage,
            worker_id=worker_id,
            project_id=settings.project_id,
            lease_s=settings.lease_s,
            delete_after_process=settings.delete_after_process,
            chunk_bytes=settings.chunk_bytes,
        )
        self.budget = InsertBudget(2 * settings.chunk_bytes)
        self._pass_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._processing = False
        self._started_at: datetime | None = None
        self._last_processed_at: datetime | None = None
        self._last_error: str | None = None
        self._failed = False
        self._totals = ProcessingResult()
        self._adopt_checked = 0.0
        self._journal = Journal(worker=worker_id)
        self._journal_saved = True  # until proven otherwise: a journal may be on disk

    # --- the interface ----------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._stopping.clear()
        self._started_at = datetime.now(UTC)
        self._task = asyncio.create_task(self._loop(), name=f"ingest-{self.worker_id}")
        _log.info("ingest.started", worker_id=self.worker_id, build_roots=len(self.build_roots))

    async def stop(self, *, drain: bool = True) -> None:
        task, self._task = self._task, None
        self._stopping.set()
        if task is not None:
            if drain:
                await task
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        async with self._pass_lock:
            pending = self._journal.batch
            keep = {s.identity for s in pending.slices} if pending is not None else set()
            keep |= set(self._journal.progress)
            try:
                released = await self.files.release(keep)
                if not keep:
                    await self.files.retire()
            except MastraAdminError as exc:
                _log.warning("ingest.release_failed", worker_id=self.worker_id, error=str(exc))
                released = 0
        _log.info("ingest.stopped", worker_id=self.worker_id, released=released, drained=drain)

    async def process_once(self) -> ProcessingResult:
        async with self._pass_lock:
            self._processing = True
            started = time.perf_counter()
            result = ProcessingResult()
            try:
                await self._pass(result)
                self._failed = False
            except Unavailable as exc:
                self._failed = True
                self._last_error = exc.message
                result.errors.append(exc.message)
                _log.warning("ingest.unavailable", worker_id=self.worker_id, error=exc.message)
            finally:
                self._processing = False
                result.duration_ms = (time.perf_counter() - started) * 1000
                self._account(result)
            return result

    def status(self) -> IngestionStatus:
        oldest = self.files.oldest_pending
        return IngestionStatus(
            running=self._task is not None and not self._task.done(),
            processing=self._processing,
            started_at=self._started_at,
            last_processed_at=self._last_processed_at,
            total_files_processed=self._totals.files_processed,
            total_events_ingested=self._totals.events_ingested,
            total_bad_lines=self._totals.bad_lines,
            pending_files=self.files.pending_count,
            lag_seconds=max(0.0, time.time() - oldest) if oldest is not None else 0.0,
            last_error=self._last_error,
        )

    @property
    def events_by_type(self) -> dict[str, int]:
        return dict(self._totals.events_by_type)

    # --- the loop ---------------------------------------------------------------------

    async def _loop(self) -> None:
        delay = self.settings.poll_interval_s
        while not self._stopping.is_set():
            try:
                result = await self.process_once()
            except Exception as exc:  # a bug must not kill ingestion silently
                self._failed = True
                self._last_error = str(exc)
                _log.exception("ingest.pass_failed", worker_id=self.worker_id)
                result = ProcessingResult(errors=[str(exc)])
            if self._failed:
                delay = min(
                    max(delay * 2, self.settings.poll_interval_s), self.settings.max_backoff_s
                )
                _log.info("ingest.backoff", worker_id=self.worker_id, seconds=delay)
            else:
                delay = self.settings.poll_interval_s
                if result.files_processed or result.events_ingested:
                    continue  # there was work: look again at once, pause only when idle
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    def _account(self, result: ProcessingResult) -> None:
        totals = self._totals
        totals.files_processed += result.files_processed
        totals.events_ingested += result.events_ingested
        totals.bad_lines += result.bad_lines
        for kind, count in result.events_by_type.items():
            totals.events_by_type[kind] = totals.events_by_type.get(kind, 0) + count
        if result.files_processed or result.events_ingested:
            self._last_processed_at = datetime.now(UTC)
        if not result.errors:
            self._last_error = None

    # --- one pass ---------------------------------------------------------------------

    async def _pass(self, result: ProcessingResult) -> None:
        files = self.files
        await files.heartbeat()
        now = time.monotonic()
        if now - self._adopt_checked >= self.settings.lease_s / 3:
            self._adopt_checked = now
            await files.adopt_orphans()
        await self._replay_journals(result)
        # The two sources share nothing but the engine, which runs an insert on one CPU:
        # side by side, each insert has a CPU (and an engine session) of its own.
        outcomes = await asyncio.gather(
            self._collector_files(result), self._build_folders(result), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _collector_files(self, result: ProcessingResult) -> None:
        files = self.files
        claimed = await files.claimed()
        room = self.settings.batch_size - len(claimed)
        if room > 0:
            await files.claim(await files.pending(), room)
            claimed = await files.claimed()
        claimed.sort(key=lambda c: (c.folder, c.project, c.rel))
        journal = self._journal

        async def remember() -> None:
            await files.save_journal(journal)

        async with self.budget.sharing("collector"):
            while claimed:
                async with self.budget.room("collector") as share:
                    found = await files.next_batch(claimed, journal.progress, room=share)
                    if found is None:
                        break
                    batch, chunk = found
                    if not any(s.eof or s.end > s.start for s in batch.slices):
                        break  # nothing readable (a file changed under its claim): next pass
                    journal.batch = batch
                    await files.save_journal(journal)
                    self._journal_saved = True
                    inserted = await self._insert(batch, chunk, result, remember)
                if not inserted:
                    await files.quarantine(batch, journal.progress)
                    gone = {s.identity for s in batch.slices}
                else:
                    result.files_processed += len(await files.finish(batch, journal.progress))
                    gone = {s.identity for s in batch.slices if s.eof}
                journal.batch = None
                claimed = [c for c in claimed if c.rel not in gone]
        if journal.batch is None and not journal.progress:
            if self._journal_saved:
                await files.drop_journal()
                self._journal_saved = False
        else:
            await files.save_journal(journal)

    async def _build_folders(self, result: ProcessingResult) -> None:
        async with self.budget.sharing("builds"):
            for folder in await asyncio.to_thread(find_build_dirs, self.build_roots):
                await self._tail(BuildDir(folder, chunk_bytes=self.settings.chunk_bytes), result)

    async def _replay_journals(self, result: ProcessingResult) -> None:
        """Finish what the last run (or an adopted worker) left journaled."""
        own = self.files.journal_path()
        self._journal.batch = None  # the journal on disk says what is pending
        for path, journal in await self.files.journals():
            if journal.batch is not None:
                batch = journal.batch

                async def remember(path: str = path, journal: Journal = journal) -> None:
                    await self.files.storage.write(path, journal.model_dump_json())

                async with self.budget.room("collector"):
                    chunk = await self.files.read_batch(batch)
                    inserted = await self._insert(batch, chunk, result, remember)
                if inserted:
                    done = await self.files.finish(batch, journal.progress)
                    result.files_processed += len(done)
                else:
                    await self.files.quarantine(batch, journal.progress)
                journal.batch = None
                _log.info("ingest.replayed", worker_id=self.worker_id, token=batch.token)
            if path == own:
                self._journal.progress = dict(journal.progress)
                await self.files.save_journal(self._journal)
            else:
                self._journal.progress.update(journal.progress)
                await self.files.save_journal(self._journal)
                await self.files.drop_journal(path)
            self._journal_saved = True

    async def _tail(self, folder: BuildDir, result: ProcessingResult) -> None:
        with folder.locked() as mine:
            if not mine:
                return
            state = await asyncio.to_thread(folder.load)

            async def remember() -> None:
                await asyncio.to_thread(folder.save, state)

            if state.pending is not None:
                batch = state.pending
                async with self.budget.room("builds"):
                    chunk = await asyncio.to_thread(folder.read_batch, batch)
                    await self._insert(batch, chunk, result, remember)
                folder.commit(state, batch)
                await asyncio.to_thread(folder.save, state)
            batches = folder.batches(state)
            while True:
                async with self.budget.room("builds") as share:
                    folder.chunk_bytes = share  # what the next batch may read
                    item = await asyncio.to_thread(next, batches, None)
                    if item is None:
                        break
                    batch, chunk = item
                    state.pending = batch
                    await asyncio.to_thread(folder.save, state)
                    await self._insert(batch, chunk, result, remember)
                folder.commit(state, batch)
                await asyncio.to_thread(folder.save, state)
                result.files_processed += len(batch.slices)

    async def _insert(
        self,
        batch: Batch,
        chunk: Chunk,
        result: ProcessingResult,
        remember: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """Insert and count; False when ClickHouse refused the batch for good (it is
        then counted as bad lines). Outages raise ``Unavailable``; a refusal short of
        the last attempt too, after ``remember`` saved the attempt count. The chunk's
        buffers are let go as the engine takes them (a retry reads the files again)."""
        if not chunk.lines:
            return True
        table = f"{self.database}.{landing_table(PARSER_OF_SIGNAL[batch.signal])}"
        lines, blank = chunk.lines, chunk.blank
        if batch.signal == "runtime":
            chunk = await asyncio.to_thread(_runtime_records, chunk, batch.token[:16])
            lines, blank = chunk.lines, chunk.blank
        try:
            await self.transport.insert_lines(table, chunk.take(), batch.insert_settings())
        except ClickHouseError as exc:
            batch.attempts += 1
            _log.error(
                "ingest.insert_refused",
                worker_id=self.worker_id,
                token=batch.token,
                attempts=batch.attempts,
                error=exc.message,
            )
            if batch.attempts < MAX_ATTEMPTS:
                if remember is not None:
                    await remember()
                raise Unavailable(f"ClickHouse refused a batch: {exc.message}") from exc
            result.bad_lines += lines
            result.errors.append(f"batch set aside after {batch.attempts} attempts: {exc.message}")
            return False
        rows = await self.transport.fetch(
            f"SELECT count() AS bad FROM {self.database}.{REJECTS} WHERE source = {{t:String}}",
            {"t": batch.token},
        )
        bad = int(rows[0]["bad"]) if rows else 0
        events = max(0, lines - bad - blank)
        kind = _event_type(batch.signal)
        result.events_ingested += events
        result.bad_lines += bad
        result.events_by_type[kind] = result.events_by_type.get(kind, 0) + events
        if bad:
            _log.warning("ingest.bad_lines", worker_id=self.worker_id, token=batch.token, count=bad)
        _log.debug(
            "ingest.inserted",
            worker_id=self.worker_id,
            signal=batch.signal,
            events=events,
            bytes=chunk.size,
        )
        return True


def stable_worker_id(path: Path) -> str:
    """A worker name that survives restarts of the one process that may use ``path``."""
    import hashlib
    import socket

    host = socket.gethostname().split(".")[0] or "host"
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in host)[:40]
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    return f"{safe}-{digest}"
