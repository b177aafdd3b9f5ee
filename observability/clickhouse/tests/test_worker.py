"""The ingestion worker on the real engine: claims, journals, adoption, outages,
refused batches, slices of big files, the background loop."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from mastra_admin.core.errors import Unavailable
from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.observability import LogQuery
from mastra_admin.observability.clickhouse import (
    ClickHouseError,
    ClickHouseIngestionWorker,
    ClickHouseObservability,
    ServerTransport,
    Transport,
)
from mastra_admin.observability.clickhouse._sql import ParamValue
from mastra_admin.observability.clickhouse._transport import INSERT_PIECE_BYTES, Lines, Row


class Outage(Transport):
    """The real engine behind a switch, to play a ClickHouse that goes away (``down``)
    or refuses every insert (``refuse``)."""

    kind: ClassVar[str] = "chdb"

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.down = False
        self.refuse = False
        self.inserts = 0

    @property
    def description(self) -> str:
        return self.inner.description

    def _check(self) -> None:
        if self.down:
            raise Unavailable("ClickHouse at 127.0.0.1:9000 does not answer: connection refused")

    async def execute(self, sql: str, params: Mapping[str, ParamValue] | None = None) -> None:
        self._check()
        await self.inner.execute(sql, params)

    async def fetch(self, sql: str, params: Mapping[str, ParamValue] | None = None) -> list[Row]:
        self._check()
        return await self.inner.fetch(sql, params)

    async def insert_lines(
        self, table: str, data: Lines, settings: Mapping[str, ParamValue]
    ) -> None:
        self._check()
        if self.refuse:
            raise ClickHouseError("Cannot parse input: expected '\"' before: 'garbage'")
        self.inserts += 1
        await self.inner.insert_lines(table, data, settings)

    async def close(self) -> None:
        await self.inner.close()


def log_lines(prefix: str, count: int, *, minutes_ago: int = 5) -> bytes:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return b"".join(
        json.dumps(
            {
                "logId": f"{prefix}-{i}",
                "timestamp": at.isoformat(),
                "level": "info",
                "message": f"line {i} of {prefix}",
                "deployment_id": "dep_1",
            }
        ).encode()
        + b"\n"
        for i in range(count)
    )


async def write_files(
    storage: LocalFileStorage, count: int, lines: int = 5, project: str = "proj_1"
) -> None:
    for n in range(count):
        await storage.write(
            f"logs/{project}/{n:04d}_{project}.jsonl", log_lines(f"{project}-{n}", lines)
        )


async def log_counts(backend: ClickHouseObservability) -> tuple[int, int]:
    rows = await backend.transport.fetch(
        f"SELECT count() AS n, uniqExact(id) AS u FROM {backend.settings.database}.mastra_admin_logs"
    )
    return int(rows[0]["n"]), int(rows[0]["u"])


def worker_on(
    backend: ClickHouseObservability,
    storage: LocalFileStorage,
    name: str,
    transport: Transport | None = None,
    **changes: object,
) -> ClickHouseIngestionWorker:
    settings = backend.settings.model_copy(update=changes)
    return ClickHouseIngestionWorker(
        transport or backend.transport,
        settings.database,
        storage,
        settings=settings,
        worker_id=name,
    )


async def test_files_are_moved_to_processed_and_read_once(
    backend: ClickHouseObservability, storage: LocalFileStorage
) -> None:
    await write_files(storage, 3)
    worker = backend.ingestion_worker(storage)
    first = await worker.process_once()
    assert (first.files_processed, first.events_ingested, first.bad_lines) == (3, 15, 0)
    assert first.events_by_type == {"logs": 15}
    second = await worker.process_once()
    assert (second.files_processed, second.events_ingested) == (0, 0)
    paths = sorted(i.path for i in await storage.list("processed/"))
    assert paths == [f"processed/logs/proj_1/{n:04d}_proj_1.jsonl" for n in range(3)]
    assert await storage.list("logs/") == []
    assert await log_counts(backend) == (15, 15)
    status = worker.status()
    assert (status.total_files_processed, status.total_events_ingested) == (3, 15)
    assert status.pending_files == 0
    await worker.stop()
    assert await storage.list("_ingest/") == []


async def test_delete_after_process_and_the_project_filter(
    backend: ClickHouseObservability, storage: LocalFileStorage
) -> None:
    await write_files(storage, 2, project="proj_1")
    await write_files(storage, 2, project="proj_2")
    worker = worker_on(backend, storage, "only-2", delete_after_process=True, project_id="proj_2")
    result = await worker.process_once()
    assert result.files_processed == 2
    left = sorted(i.path for i in await storage.list(""))
    assert left == [
        "_ingest/workers/only-2.json",
        "logs/proj_1/0000_proj_1.jsonl",
        "logs/proj_1/0001_proj_1.jsonl",
    ]
    page = await backend.query.list_logs(LogQuery(limit=100))
    assert {log.project_id for log in page.items} == {"proj_2"}
    await worker.stop()


async def test_two_workers_never_take_the_same_file(
    backend: ClickHouseObservability, storage: LocalFileStorage
) -> None:
    await write_files(storage, 40, lines=3)
    one = worker_on(backend, storage, "one", batch_size=5)
    two = worker_on(backend, storage, "two", batch_size=5)

    async def drain(worker: ClickHouseIngestionWorker) -> int:
        files = 0
        while True:
            result = await worker.process_once()
            files += result.files_processed
            if result.files_processed == 0:
                return files

    done = await asyncio.gather(drain(one), drain(two))
    assert sum(done) == 40
    assert all(count > 0 for count in done)
    assert await log_counts(backend) == (120, 120)
    await one.stop()
    await two.stop()


async def test_a_crash_after_the_insert_is_repaired_without_duplicates(
    backend: ClickHouseObservability, storage: LocalFileStorage
) -> None:
    await write_files(storage, 4)
    crashed = worker_on(backend, storage, "w-1")
    # What a worker does up to its crash: claim, journal, insert, and nothing after.
    await crashed.files.claim(await crashed.files.pending(), 10)
    claimed = sorted(await crashed.files.claimed(), key=lambda c: c.rel)
    next_batch = await crashed.files.next_batch(claimed, {})
    assert next_batch is not None
    batch, chunk = next_batch
    crashed._journal.batch = batch
    await crashed.files.save_journal(crashed._journal)
    table = f"{backend.settings.database}.mastra_admin_ingest_landing_logs"
    await backend.transport.insert_lines(table, chunk.take(), batch.insert_settings())
    assert await log_counts(backend) == (20, 20)

    restarted = worker_on(backend, storage, "w-1")
    result = await restarted.process_once()
    assert result.files_processed == 4
    assert await log_counts(backend) == (20, 20)
    assert await storage.list("_ingest/claims/") == []
    assert await storage.list("_ingest/journal/") == []
    await restarted.stop()


async def test_a_silent_workers_claims_and_journal_are_adopted(
    backend: ClickHouseObservability, storage: LocalFileStorage
) -> None:
    await write_files(storage, 3)
    gone = worker_on(backend, storage, "gone")
    await gone.files.heartbeat(force=True)
    await gone.files.claim(await gone.files.pending(), 10)
    claimed = sorted(await gone.files.claimed(), key=lambda c: c.rel)
    next_batch = await gone.files.next_batch(claimed[:1], {})
    assert next_batch is not None
    batch, chunk = next_batch
    gone._journal.batch = batch
    await gone.files.save_journal(gone._journal)
    table = f"{backend.settings.database}.mastra_admin_ingest_landing_logs"
    await backend.transport.insert_lines(table, chunk.take(), batch.insert_settings())

    alive = worker_on(backend, storage, "alive")
    assert (await alive.process_once()).files_processed == 0  # its lease still holds
    stale = {"worker": "gone", "at": time.time() - 60}
    await storage.write("_ingest/workers/gone.json", json.dumps(stale))
    alive._adopt_checked = 0.0
    result = await alive.process_once()
    assert result.files_processed == 3
    assert await log_counts(backend) == (15, 15)
    assert [i.path for i in await storage.list("_ingest/")] == ["_ingest/workers/alive.json"]
    await alive.stop()


async def test_clickhouse_down_keeps_every_file_until_it_is_back(
    backend: ClickHouseObservability, storage: LocalFileStorage
) -> None:
    await write_files(storage, 5)
    outage = Outage(backend.transport)
    worker = worker_on(backend, storage, "patient", transport=outage)
    await worker.process_once()  # heartbeat and claims work without ClickHouse
    outage.down = True
    await write_files(storage, 2, project="proj_9")
    result = await worker.process_once()
    assert result.errors
    assert "does not answer" in result.errors[0]
    assert worker.status().last_error is not None
    outage.down = False
    result = await worker.process_once()
    assert not result.errors
    assert worker.status().last_error is None
    assert await log_counts(backend) == (35, 35)
    await worker.stop()


async def test_the_background_loop_backs_off_and_catches_up(
    backend: ClickHouseObservability, storage: LocalFileStorage
) -> None:
    outage = Outage(backend.transport)
    outage.down = True
    worker = worker_on(backend, storage, "looping", transport=outage, max_backoff_s=0.4)
    await write_files(storage, 3)
    await worker.start()
    await asyncio.sleep(1.0)
    status = worker.status()
    assert status.running
    assert status.last_error is not None
    assert status.total_events_ingested == 0
    outage.down = False
    deadline = time.monotonic() + 20
    while worker.status().total_events_ingested < 15 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await write_files(storage, 1, project="proj_late")
    while worker.status().total_events_ingested < 20 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await worker.stop(drain=True)
    assert not worker.status().running
    assert await log_counts(backend) == (20, 20)


async def test_a_server_that_does_not_answer_is_unavailable(
    backend: ClickHouseObservability, storage: LocalFileStorage
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ServerTransport(f"clickhouse://127.0.0.1:{port}/default")
    try:
        with pytest.raises(Unavailable, match="does not answer"):
            await server.ping()
        await write_files(storage, 2)
        worker = worker_on(backend, storage, "nowhere", transport=server)
        result = await worker.process_once()
        assert result.errors
        assert result.events_ingested == 0
        await worker.stop(drain=False)
        waiting = await storage.list("logs/") + await storage.list("_ingest/claims/")
        assert len(waiting) == 2  # journaled: the next run of this worker repeats it
    finally:
        await server.close()


async def test_a_batch_clickhouse_keeps_refusing_is_set_aside(
    backend: ClickHouseObservability, storage: LocalFileStorage
) -> None:
    await write_files(storage, 1)
    outage = Outage(backend.transport)
    outage.refuse = True
    worker = worker_on(backend, storage, "careful", transport=outage)
    results = [await worker.process_once() for _ in range(3)]
    assert all(r.errors for r in results)
    assert results[-1].bad_lines == 5
    assert [i.path for i in await storage.list("_ingest/failed/")] == [
        "_ingest/failed/logs/proj_1/0000_proj_1.jsonl"
    ]
    outage.refuse = False
    await write_files(storage, 1, project="proj_ok")
    result = await worker.process_once()
    assert (result.files_processed, result.events_ingested, result.errors) == (1, 5, [])
    await worker.stop()


async def test_a_big_file_goes_in_slices_of_whole_lines(
    backend: ClickHouseObservability, storage: LocalFileStorage
) -> None:
    body = log_lines("big", 1500)
    assert len(body) > 3 * 64 * 1024
    await storage.write("logs/proj_1/big.jsonl", body)
    outage = Outage(backend.transport)
    worker = worker_on(backend, storage, "slicer", transport=outage, chunk_bytes=64 * 1024)
    result = await worker.process_once()
    assert (result.files_processed, result.events_ingested) == (1, 1500)
    assert outage.inserts >= 2  # alone, the collector files take twice chunk_bytes
    assert await log_counts(backend) == (1500, 1500)
    await worker.stop()


async def test_stop_without_drain_gives_the_claims_back(
    backend: ClickHouseObservability, storage: LocalFileStorage
) -> None:
    await write_files(storage, 3)
    worker = worker_on(backend, storage, "quitter")
    await worker.files.heartbeat(force=True)
    await worker.files.claim(await worker.files.pending(), 2)
    await worker.stop(drain=False)
    assert len(await storage.list("logs/")) == 3
    assert await storage.list("_ingest/") == []


async def test_a_chunk_of_one_big_file_ends_at_its_last_whole_line(
    backend: ClickHouseObservability, storage: LocalFileStorage
) -> None:
    """A read that stops inside a line gives the lines before it; a line longer than
    the chunk comes whole; the rest of a complete file comes whole even without a
    final newline. Pieces are at most a mebibyte."""
    body = log_lines("edge", 40)
    first = body.index(b"\n") + 1
    worker = worker_on(backend, storage, "edges", chunk_bytes=64 * 1024)

    async def read(path: str, start: int, room: int, size: int) -> bytes:
        pieces = await worker.files._read_lines(path, start, room, size)
        assert all(0 < len(piece) <= INSERT_PIECE_BYTES for piece in pieces)
        return b"".join(pieces)

    await storage.write("scratch/edge.jsonl", body)
    assert await read("scratch/edge.jsonl", 0, first + 7, len(body)) == body[:first]
    assert await read("scratch/edge.jsonl", first, len(body), len(body)) == body[first:]
    long_line = b'{"msg": "' + b"x" * (2 * INSERT_PIECE_BYTES) + b'"}\n'
    await storage.write("scratch/long.jsonl", long_line + body)
    size = len(long_line) + len(body)
    assert await read("scratch/long.jsonl", 0, 64, size) in (long_line, long_line + body[:first])
    await storage.write("scratch/open.jsonl", body + b'{"msg": "no newline"}')
    size = len(body) + 21
    assert await read("scratch/open.jsonl", 0, 10 * size, size) == body + b'{"msg": "no newline"}'
    await worker.stop()
