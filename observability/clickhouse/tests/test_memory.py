"""The worker's memory: freed memory goes back to the system, the engine loads
without pyarrow and gives back its start-up pages, a chunk is in memory once (its
buffers let go as the engine takes them), and an insert of many megabytes reaches
the engine in pieces yet is stored as one block.

These run where the project runs, Linux with glibc: they read chDB's jemalloc
settings and /proc, and check a glibc allocator setting."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

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


async def test_an_insert_in_several_buffers_is_one_block_too(
    backend: ClickHouseObservability,
) -> None:
    """The worker hands on the files of a batch as they were read (no joined copy)."""
    db = backend.settings.database
    buffers = [
        b"".join(
            json.dumps(
                {"traceId": f"t{f}", "spanId": f"s{f}-{n}", "startTime": "2025-01-02T03:04:05Z"}
            ).encode()
            + b"\n"
            for n in range(500)
        )
        for f in range(4)
    ]
    batch = Batch(
        signal="spans",
        project_id="p",
        slices=[Slice(identity="buffers", location="x", start=0, end=sum(map(len, buffers)))],
    )
    table = f"{db}.mastra_admin_ingest_landing_spans"
    await backend.transport.insert_lines(table, buffers, batch.insert_settings())
    await backend.transport.insert_lines(table, b"".join(buffers), batch.insert_settings())
    rows = await backend.transport.fetch(
        f"SELECT count() AS n, uniqExact(trace_id) AS traces, uniqExact(_part) AS parts "
        f"FROM {db}.mastra_admin_spans"
    )
    assert (int(rows[0]["n"]), int(rows[0]["traces"]), int(rows[0]["parts"])) == (2000, 4, 1)


_ENGINE_PAGES = """
import asyncio, json, sys
from mastra_admin.observability.clickhouse import ChdbTransport
from mastra_admin.observability.clickhouse._engine_memory import release_engine_pages

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024

def library_pages_of_this_process_only():
    # MB of the library's clean pages no other process maps (another process that
    # loaded chDB, this test's own for one, keeps the pages it shares mapped).
    import os, chdb
    library = os.path.realpath(chdb._chdb.__file__)
    total, ours = 0, False
    for line in open("/proc/self/smaps"):
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5 and ":" not in fields[0]:
            ours = len(fields) >= 6 and fields[5] == library and fields[1] in ("r--p", "r-xp")
        elif ours and fields[0] == "Private_Clean:":
            total += int(fields[1])
    return total // 1024

async def main():
    transport = ChdbTransport(sys.argv[1])
    await transport.execute("CREATE TABLE t (n UInt64) ENGINE = MergeTree ORDER BY n")
    await transport.execute("INSERT INTO t SELECT number FROM numbers(100000)")
    arrow = "pyarrow" in sys.modules or "numpy" in sys.modules
    file_before, own_before = status("RssFile"), library_pages_of_this_process_only()
    released = release_engine_pages() >> 20
    file_after, own_after = status("RssFile"), library_pages_of_this_process_only()
    rows = await transport.fetch("SELECT sum(n) AS s, count() AS c FROM t WHERE n % 7 = 3")
    await transport.execute("INSERT INTO t SELECT number FROM numbers(10)")
    total = await transport.fetch("SELECT count() AS c FROM t")
    await transport.close()
    import pyarrow  # hidden only while chDB loaded
    print(json.dumps({
        "arrow_loaded_with_engine": arrow, "file_before": file_before,
        "file_after": file_after, "released": released, "own_before": own_before,
        "own_after": own_after, "rows": rows[0],
        "total": int(total[0]["c"]),
    }))

asyncio.run(main())
"""


def test_the_engine_loads_without_arrow_and_gives_back_its_start_up_pages(
    tmp_path: Path,
) -> None:
    """chDB imports pyarrow and numpy for Arrow results this provider never asks for;
    and most of the library's pages resident after start-up are not used again. Both
    are given back; the engine goes on answering, from the pages it reads in again."""
    output = subprocess.run(
        [sys.executable, "-c", _ENGINE_PAGES, str(tmp_path / "chdb")],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = json.loads(output.stdout.strip().splitlines()[-1])
    assert result["arrow_loaded_with_engine"] is False
    assert result["file_before"] > 100, result  # the library's start-up pages
    # Every page only this process mapped goes; what another process maps too (this
    # test's own process, which ran the engine) stays, so the drop depends on it.
    assert result["own_before"] > 10, result
    assert result["own_after"] < 5, result
    assert result["file_after"] <= result["file_before"] - result["own_before"] + 5, result
    assert result["released"] >= result["own_before"] - 5, result
    n = [k for k in range(100000) if k % 7 == 3]
    assert (int(result["rows"]["s"]), int(result["rows"]["c"])) == (sum(n), len(n))
    assert result["total"] == 100010


def test_without_the_engine_nothing_is_released() -> None:
    code = (
        "from mastra_admin.observability.clickhouse._engine_memory import "
        "release_engine_pages; print(release_engine_pages())"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert output.stdout.strip() == "0"


@given(
    st.lists(st.sampled_from([b"a", b"bc", b"", b"\n"]), max_size=40).map(b"".join),
    st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_a_chunk_counts_its_lines_wherever_its_buffers_part_them(
    text: bytes, cuts: list[int]
) -> None:
    """Lines and blank lines are counted as in the joined text, though a buffer may
    start or end inside a line (files are read in pieces)."""
    from mastra_admin.observability.clickhouse._batch import Chunk

    text += b"\n"
    bounds = sorted({0, len(text), *(min(c, len(text)) for c in cuts)})
    buffers = [text[a:b] for a, b in itertools.pairwise(bounds)]
    chunk = Chunk(buffers)
    lines = text.split(b"\n")[:-1]
    assert (chunk.lines, chunk.blank, chunk.size) == (
        len(lines),
        sum(1 for line in lines if not line),
        len(text),
    )


def test_a_chunk_hands_its_buffers_out_once_and_lets_them_go() -> None:
    from mastra_admin.observability.clickhouse._batch import Chunk

    a, b, c = (bytes(bytearray(text)) for text in (b"a\n", b"b\n", b"c\n"))
    alone = sys.getrefcount(a)
    chunk = Chunk([a, b, c])
    assert (sys.getrefcount(a), sys.getrefcount(b)) == (alone + 1, alone + 1)
    taken = chunk.take()
    assert next(taken) == b"a\n"
    assert (sys.getrefcount(a), sys.getrefcount(b)) == (alone, alone + 1)
    assert list(taken) == [b"b\n", b"c\n"]
    assert sys.getrefcount(c) == alone
    assert list(chunk.take()) == []
    assert chunk.lines == 3


async def test_the_insert_budget_is_shared_and_never_exceeded() -> None:
    """A source alone takes the whole budget; while another is at work, each takes
    half; what is held at once never passes the total."""
    import asyncio

    from mastra_admin.observability.clickhouse._worker import InsertBudget

    budget = InsertBudget(16)
    held: dict[str, int] = {}
    peaks: list[int] = []
    shares: dict[str, list[int]] = {"a": [], "b": []}

    async def source(name: str, rounds: int, pause: float) -> None:
        async with budget.sharing(name):
            for _ in range(rounds):
                async with budget.room(name) as share:
                    held[name] = share
                    peaks.append(sum(held.values()))
                    shares[name].append(share)
                    await asyncio.sleep(pause)
                    del held[name]
                await asyncio.sleep(0)

    await source("a", 2, 0)
    assert shares["a"] == [16, 16]  # alone: all of it
    shares["a"].clear()
    await asyncio.gather(source("a", 6, 0.01), source("b", 3, 0.01))
    assert max(peaks) <= 16
    # a's first room came before b began; from then on, side by side: half each.
    assert shares["a"][1:3] == [8, 8]
    assert shares["b"] == [8, 8, 8]
    assert shares["a"][-1] == 16  # alone again once b is done
    assert 16 in peaks[2:]  # the two held their halves at once
