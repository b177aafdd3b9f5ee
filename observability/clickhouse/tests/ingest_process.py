"""A worker process for the crash tests: ingests until it is killed.

python ingest_process.py <chdb folder> <files folder> <builds folder> <database>
"""

from __future__ import annotations

import asyncio
import sys

import structlog

from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.observability.clickhouse import ClickHouseObservability, ClickHouseSettings


def crash_test_settings(chdb: str, database: str) -> ClickHouseSettings:
    return ClickHouseSettings(
        path=chdb,
        database=database,
        retention_days=3650,
        log_retention_days=3650,
        poll_interval_s=0.05,
        chunk_bytes=64 * 1024,
        batch_size=3,
        lease_s=2.0,
    )


async def main(chdb: str, files: str, builds: str, database: str) -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    backend = ClickHouseObservability(crash_test_settings(chdb, database))
    await backend.init()
    worker = backend.ingestion_worker(LocalFileStorage(files), build_dirs=[builds])
    await worker.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
