"""The worker's memory: freed memory goes back to the system, and an insert of many
megabytes reaches the engine in pieces yet is stored as one block.

These run where the project runs, Linux with glibc: they read chDB's jemalloc
settings and /proc, and check a glibc allocator setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mastra_admin.observability.clickhouse import ClickHouseObservability
from mastra_admin.observability.clickhouse._batch import Batch, Slice
from mastra_admin.observability.clickhouse._transport import INSERT_PIECE_BYTES

_ENGINE_ALLOCATOR = """
import asyncio, json, sys
from mastra_admin.observability.clickhouse import ChdbTransport

async def main():
    transport = ChdbTransport(sys.argv[1])
    rows = await transport.fetch("SELECT * FROM system.jemalloc_stats")
    await transport.close()
    text = str(next(iter(rows[0].values())))
    start = text.index("opt.dirty_decay_ms: ") + len("opt.dirty_decay_ms: ")
    print(json.dumps(int(text[start:].split()[0])))

asyncio.run(main())
"""


def _decay_ms(tmp_path: Path, **env: str) -> int:
    run_env = {k: v for k, v in os.environ.items() if k != "JE_MALLOC_CONF"} | env
    output = subprocess.run(
        [sys.executable, "-c", _ENGINE_ALLOCATOR, str(tmp_path / "chdb")],
        env=run_env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    value: int = json.loads(output.stdout.strip().splitlines()[-1])
    return value


def test_the_embedded_engine_hands_freed_pages_back_at_once(tmp_path: Path) -> None:
    assert _decay_ms(tmp_path) == 0


def test_an_allocator_setting_of_the_user_is_kept(tmp_path: Path) -> None:
    assert _decay_ms(tmp_path, JE_MALLOC_CONF="dirty_decay_ms:2000") == 2000


_WORKER_BUFFERS = """
import json, sys, threading
from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.observability.clickhouse import ClickHouseSettings
from mastra_admin.observability.clickhouse._worker import ClickHouseIngestionWorker

def anon_kb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])

ClickHouseIngestionWorker(
    None, "db", LocalFileStorage(sys.argv[1]), settings=ClickHouseSettings(), worker_id="w"
)

def read_chunks():
    for size in (16, 15, 14, 16):  # chunks of a worker, as its reading threads make them
        chunk = bytes(size << 20)
        chunk = chunk.replace(b"\\0", b"a")
        del chunk

before = anon_kb()
for _ in range(3):
    thread = threading.Thread(target=read_chunks)
    thread.start()
    thread.join()
print(json.dumps((anon_kb() - before) // 1024))
"""


def test_the_chunks_a_worker_reads_are_given_back_when_freed(tmp_path: Path) -> None:
    output = subprocess.run(
        [sys.executable, "-c", _WORKER_BUFFERS, str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    kept_mb = json.loads(output.stdout.strip().splitlines()[-1])
    assert kept_mb < 8


async def test_an_insert_of_many_pieces_is_one_block(backend: ClickHouseObservability) -> None:
    db = backend.settings.database
    line = json.dumps(
        {
            "traceId": "t" * 32,
            "spanId": "s",
            "name": "piece",
            "startTime": "2025-01-02T03:04:05Z",
            "attributes": {"pad": "x" * 900},
        }
    ).encode()
    count = 3 * INSERT_PIECE_BYTES // len(line) + 7
    data = b"".join(
        line.replace(b'"spanId": "s"', f'"spanId": "s{n}"'.encode()) + b"\n" for n in range(count)
    )
    assert len(data) > 3 * INSERT_PIECE_BYTES
    batch = Batch(
        signal="spans",
        project_id="p",
        slices=[Slice(identity="pieces", location="x", start=0, end=len(data))],
    )
    table = f"{db}.mastra_admin_ingest_landing_spans"
    await backend.transport.insert_lines(table, data, batch.insert_settings())
    await backend.transport.insert_lines(table, data, batch.insert_settings())
    rows = await backend.transport.fetch(
        f"SELECT count() AS n, uniqExact(_part) AS parts FROM {db}.mastra_admin_spans"
    )
    assert (int(rows[0]["n"]), int(rows[0]["parts"])) == (count, 1)
