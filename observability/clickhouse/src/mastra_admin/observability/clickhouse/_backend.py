"""``ClickHouseObservability``: the observability provider ``clickhouse``."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import ClassVar

import structlog

from mastra_admin.core.errors import Unavailable
from mastra_admin.core.file_storage import FileStorageProvider
from mastra_admin.core.observability import ObservabilityBackend
from mastra_admin.observability.clickhouse._query import ClickHouseQueryProvider
from mastra_admin.observability.clickhouse._schema import Schema, SchemaStatus
from mastra_admin.observability.clickhouse._settings import ClickHouseSettings
from mastra_admin.observability.clickhouse._transport import (
    ChdbTransport,
    ServerTransport,
    Transport,
    default_worker_name,
)
from mastra_admin.observability.clickhouse._worker import (
    ClickHouseIngestionWorker,
    stable_worker_id,
)

__all__ = ["ClickHouseObservability"]

_log = structlog.get_logger("mastra_admin.observability.clickhouse")


class ClickHouseObservability(ObservabilityBackend):
    """Events in ClickHouse: a server when ``settings.url`` is set, else the embedded
    engine with its data under ``settings.path`` (default ``{data_dir}/clickhouse``).

    ``init()`` migrates the schema; ``query`` reads; ``ingestion_worker()`` writes.
    In the embedded set-up the worker and the queries must run in this process: the
    engine's data folder admits one process.

    A ClickHouse server that does not answer at start does not stop the platform:
    ``init()`` logs it and migrates in the background once the server answers (with
    backoff up to ``max_backoff_s``); meanwhile queries are ``Unavailable`` and the
    ingestion worker leaves the files waiting.
    """

    type: ClassVar[str] = "clickhouse"

    def __init__(
        self,
        settings: ClickHouseSettings | None = None,
        *,
        data_dir: Path | str | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings or ClickHouseSettings()
        if transport is not None:
            self.transport = transport
        elif self.settings.url:
            self.transport = ServerTransport(
                self.settings.url, query_timeout_s=self.settings.query_timeout_s
            )
        else:
            base = Path(data_dir) if data_dir is not None else Path(".mastra-admin")
            self.transport = ChdbTransport(self.settings.path or base / "clickhouse")
        self.schema = Schema(
            self.transport,
            self.settings.database,
            retention_days=self.settings.retention_days,
            log_retention_days=self.settings.log_retention_days,
            dedup_window=self.settings.dedup_window,
        )
        self.query = ClickHouseQueryProvider(self.transport, self.settings.database)
        self._workers: list[ClickHouseIngestionWorker] = []
        self._migrating: asyncio.Task[None] | None = None

    @property
    def description(self) -> str:
        return f"{self.transport.description}, database {self.settings.database}"

    async def init(self) -> None:
        try:
            await self.schema.migrate()
        except Unavailable as exc:
            if isinstance(self.transport, ChdbTransport):
                raise
            _log.warning(
                "clickhouse.unavailable_at_start", where=self.description, error=exc.message
            )
            self._migrating = asyncio.create_task(self._migrate_when_it_answers())
            return
        released = await self.transport.release_unused_memory()
        _log.info("clickhouse.ready", where=self.description, released_mb=released >> 20)

    async def _migrate_when_it_answers(self) -> None:
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                await self.schema.migrate()
            except Unavailable as exc:
                delay = min(delay * 2, self.settings.max_backoff_s)
                _log.info("clickhouse.still_unavailable", error=exc.message, retry_s=delay)
                continue
            _log.info("clickhouse.ready", where=self.description, released_mb=0)
            return

    async def check(self) -> SchemaStatus:
        return await self.schema.status()

    async def drop(self) -> None:
        """Delete every table and every event (for tests and resets)."""
        await self.schema.drop()

    def worker_name(self) -> str:
        if self.settings.worker_id:
            return self.settings.worker_id
        if isinstance(self.transport, ChdbTransport):
            # One process at a time may use an embedded engine's folder: a name tied
            # to the folder lets a restarted worker pick up its own claims at once.
            return stable_worker_id(Path(self.transport.path))
        return default_worker_name()

    def ingestion_worker(
        self, file_storage: FileStorageProvider, *, build_dirs: list[str] | None = None
    ) -> ClickHouseIngestionWorker:
        name = self.worker_name()
        if any(w.worker_id == name for w in self._workers):
            name = f"{name}-{len(self._workers)}"
        worker = ClickHouseIngestionWorker(
            self.transport,
            self.settings.database,
            file_storage,
            settings=self.settings,
            worker_id=name,
            build_dirs=build_dirs,
        )
        self._workers.append(worker)
        return worker

    async def ping(self) -> None:
        await self.transport.ping()
        if self._migrating is not None and not self._migrating.done():
            raise Unavailable("ClickHouse answers, but its schema is not migrated yet")

    async def close(self) -> None:
        if self._migrating is not None:
            self._migrating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._migrating
            self._migrating = None
        for worker in self._workers:
            if worker.status().running:
                await worker.stop(drain=False)
        self._workers.clear()
        await self.transport.close()
