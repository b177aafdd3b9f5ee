"""Tailing the build folders on the real engine: lines appended while a file is read,
a cut file, a replaced file, the runtime output, the build's ids, the folder lock,
and a tail insert repeated after a crash."""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mastra_admin.core.events import LogLevel
from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.observability import LogQuery, SpanQuery
from mastra_admin.observability.clickhouse import ClickHouseObservability
from mastra_admin.observability.clickhouse._build_dirs import BuildDir, TailState
from mastra_admin.observability.clickhouse._transport import INSERT_PIECE_BYTES

NOW = datetime.now(UTC) - timedelta(minutes=3)


def span_line(n: int, trace: str = "t-1") -> bytes:
    start = (NOW + timedelta(milliseconds=n)).isoformat()
    record = {
        "type": "span",
        "data": {
            "id": f"s-{n}",
            "traceId": trace,
            "name": f"step {n}",
            "startTime": start,
            "endTime": start,
            "isRootSpan": n == 0,
        },
    }
    return json.dumps(record).encode() + b"\n"


def make_build(root: Path, name: str = "build_1", *, meta: bool = True) -> Path:
    obs = root / name / "observability"
    for folder in ("spans", "logs", "runtime"):
        (obs / folder).mkdir(parents=True, exist_ok=True)
    if meta:
        (obs / "meta.json").write_text(
            json.dumps({"project_id": "proj_t", "deployment_id": "dep_t", "build_id": name})
        )
    return obs


async def span_ids(backend: ClickHouseObservability) -> list[str]:
    rows = await backend.transport.fetch(
        f"SELECT span_id FROM {backend.settings.database}.mastra_admin_spans ORDER BY span_id"
    )
    return [r["span_id"] for r in rows]


async def test_lines_appended_while_tailing_arrive_once_and_whole(
    backend: ClickHouseObservability, storage: LocalFileStorage, tmp_path: Path
) -> None:
    obs = make_build(tmp_path / "builds")
    target = obs / "spans" / "1_a.jsonl"
    worker = backend.ingestion_worker(storage, build_dirs=[str(tmp_path / "builds")])
    with open(target, "ab") as out:
        out.write(span_line(0) + span_line(1))
        out.write(span_line(2)[:25])  # a line still being written
        out.flush()
        result = await worker.process_once()
        assert result.events_ingested == 2
        assert await span_ids(backend) == ["s-0", "s-1"]
        out.write(span_line(2)[25:] + span_line(3))
        out.flush()
        assert (await worker.process_once()).events_ingested == 2
        assert (await worker.process_once()).events_ingested == 0
    assert await span_ids(backend) == ["s-0", "s-1", "s-2", "s-3"]
    page = await backend.query.list_spans(SpanQuery(project_id="proj_t", deployment_id="dep_t"))
    assert page.total == 4
    state = TailState.model_validate_json((obs / ".ingest-state.json").read_bytes())
    assert state.files["spans/1_a.jsonl"].offset == target.stat().st_size
    assert target.exists()  # never deleted: the server may still append
    await worker.stop()


async def test_a_cut_file_is_read_again_from_the_start(
    backend: ClickHouseObservability, storage: LocalFileStorage, tmp_path: Path
) -> None:
    obs = make_build(tmp_path / "builds")
    target = obs / "spans" / "1_a.jsonl"
    target.write_bytes(span_line(0) + span_line(1) + span_line(2))
    worker = backend.ingestion_worker(storage, build_dirs=[str(tmp_path / "builds")])
    assert (await worker.process_once()).events_ingested == 3
    target.write_bytes(span_line(7, trace="t-2"))  # shorter than the saved offset
    assert (await worker.process_once()).events_ingested == 1
    assert await span_ids(backend) == ["s-0", "s-1", "s-2", "s-7"]
    state = TailState.model_validate_json((obs / ".ingest-state.json").read_bytes())
    assert state.files["spans/1_a.jsonl"].generation == 1
    await worker.stop()


async def test_a_replaced_file_is_known_by_its_first_bytes(
    backend: ClickHouseObservability, storage: LocalFileStorage, tmp_path: Path
) -> None:
    obs = make_build(tmp_path / "builds")
    target = obs / "spans" / "1_a.jsonl"
    target.write_bytes(span_line(0) + span_line(1))
    worker = backend.ingestion_worker(storage, build_dirs=[str(tmp_path / "builds")])
    assert (await worker.process_once()).events_ingested == 2
    replacement = obs / "spans" / ".swap"
    replacement.write_bytes(span_line(5) + span_line(6) + span_line(8))  # longer, new content
    os.replace(replacement, target)
    assert (await worker.process_once()).events_ingested == 3
    assert await span_ids(backend) == ["s-0", "s-1", "s-5", "s-6", "s-8"]
    await worker.stop()


async def test_runtime_output_becomes_logs(
    backend: ClickHouseObservability, storage: LocalFileStorage, tmp_path: Path
) -> None:
    obs = make_build(tmp_path / "builds")
    ms = int(NOW.timestamp() * 1000)
    (obs / "runtime" / "stdout-1-2.log").write_bytes(
        b"Mastra API running on port 4111\n\n"
        + json.dumps({"level": 40, "time": ms, "msg": "slow request", "route": "/x"}).encode()
        + b"\n"
    )
    (obs / "runtime" / "stderr-1-2.log").write_bytes(b"Error: ECONNREFUSED\n  at connect\n")
    worker = backend.ingestion_worker(storage, build_dirs=[str(tmp_path / "builds")])
    result = await worker.process_once()
    assert (result.events_ingested, result.bad_lines) == (4, 0)
    assert result.events_by_type == {"logs": 4}
    page = await backend.query.list_logs(LogQuery(project_id="proj_t", limit=10))
    got = {(log.source, log.message): log for log in page.items}
    assert set(got) == {
        ("stdout", "Mastra API running on port 4111"),
        ("stdout", "slow request"),
        ("stderr", "Error: ECONNREFUSED"),
        ("stderr", "  at connect"),
    }
    assert got[("stdout", "slow request")].level == LogLevel.WARN
    assert got[("stdout", "slow request")].attributes == {"route": "/x"}
    assert got[("stderr", "Error: ECONNREFUSED")].level == LogLevel.INFO
    assert all(log.deployment_id == "dep_t" for log in page.items)
    await worker.stop()


async def test_without_meta_the_ids_come_from_the_records(
    backend: ClickHouseObservability, storage: LocalFileStorage, tmp_path: Path
) -> None:
    obs = make_build(tmp_path / "builds", meta=False)
    record = json.loads(span_line(0))
    record.update(projectId="proj_env", deploymentId="dep_env")
    (obs / "spans" / "1.jsonl").write_bytes(json.dumps(record).encode() + b"\n")
    worker = backend.ingestion_worker(storage, build_dirs=[str(obs.parent)])
    await worker.process_once()
    (span,) = (await backend.query.list_spans(SpanQuery())).items
    assert (span.project_id, span.deployment_id) == ("proj_env", "dep_env")
    await worker.stop()


async def test_a_folder_locked_by_another_worker_is_left_alone(
    backend: ClickHouseObservability, storage: LocalFileStorage, tmp_path: Path
) -> None:
    obs = make_build(tmp_path / "builds")
    (obs / "spans" / "1.jsonl").write_bytes(span_line(0))
    worker = backend.ingestion_worker(storage, build_dirs=[str(tmp_path / "builds")])
    with open(obs / ".ingest.lock", "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert (await worker.process_once()).events_ingested == 0
    assert (await worker.process_once()).events_ingested == 1
    await worker.stop()


async def test_a_tail_insert_repeated_after_a_crash_adds_nothing(
    backend: ClickHouseObservability, storage: LocalFileStorage, tmp_path: Path
) -> None:
    obs = make_build(tmp_path / "builds")
    (obs / "spans" / "1.jsonl").write_bytes(span_line(0) + span_line(1))
    folder = BuildDir(obs, chunk_bytes=1 << 20)
    state = folder.load()
    batch, chunk = next(folder.batches(state))
    state.pending = batch
    folder.save(state)  # journaled, inserted, then the crash: the offset never moved
    table = f"{backend.settings.database}.mastra_admin_ingest_landing_spans"
    await backend.transport.insert_lines(table, chunk.take(), batch.insert_settings())
    worker = backend.ingestion_worker(storage, build_dirs=[str(tmp_path / "builds")])
    await worker.process_once()
    assert await span_ids(backend) == ["s-0", "s-1"]
    with open(obs / "spans" / "1.jsonl", "ab") as out:
        out.write(span_line(2))
    await worker.process_once()
    assert await span_ids(backend) == ["s-0", "s-1", "s-2"]
    await worker.stop()


def test_a_file_that_grew_during_a_pass_is_not_taken_for_a_new_one(tmp_path: Path) -> None:
    """A pass lists the files once; a file that grows before its turn is read past its
    listed size, and the next batch must not judge truncation by that stale size (it
    would take the file for a new one and read it all again)."""
    from mastra_admin.observability.clickhouse._build_dirs import BuildDir

    obs = tmp_path / "build-1" / "observability"
    (obs / "spans").mkdir(parents=True)
    (obs / "logs").mkdir()
    line = b'{"level":30,"time":1795309729026,"msg":"hello"}\n'
    (obs / "spans" / "a.jsonl").write_bytes(b'{"type":"span","data":{}}\n')
    logs = obs / "logs" / "a.jsonl"
    logs.write_bytes(line * 2)
    folder = BuildDir(obs, chunk_bytes=1 << 20)
    state = folder.load()
    batches = folder.batches(state)
    spans_batch, _ = next(batches)  # the pass has listed the logs file at two lines
    assert spans_batch.signal == "spans"
    logs.write_bytes(line * 6)  # the server appends before the logs' turn
    folder.commit(state, spans_batch)
    read: list[bytes] = []
    for batch, chunk in batches:
        folder.commit(state, batch)
        read.extend(chunk.take())
    assert b"".join(read) == line * 6, "every line once"
    assert state.files["logs/a.jsonl"].generation == 0


def test_a_chunk_ends_at_its_last_whole_line(tmp_path: Path) -> None:
    """A read that stops inside a line gives the lines before it; a line longer than
    the chunk comes whole once it is finished (with the whole lines after it in the
    piece that ends it), and not before. Pieces are at most a mebibyte."""
    path = tmp_path / "a.jsonl"
    lines = [span_line(n) for n in range(3)]
    path.write_bytes(b"".join(lines) + b'{"type": "span", "da')

    def read(start: int, room: int) -> bytes:
        pieces = BuildDir._read_lines(path, start, room)
        assert all(0 < len(piece) <= INSERT_PIECE_BYTES for piece in pieces)
        return b"".join(pieces)

    assert read(0, len(lines[0]) + len(lines[1]) + 5) == lines[0] + lines[1]
    assert read(len(lines[0]), 10_000) == lines[1] + lines[2]
    long_line = b'{"msg": "' + b"x" * (3 * INSERT_PIECE_BYTES) + b'"}\n'
    path.write_bytes(long_line + lines[0] + b'{"type"')
    assert read(0, 64) in (long_line, long_line + lines[0])
    path.write_bytes(long_line[:-1])
    assert read(0, 64) == b""
    big = lines[0] * (2 * INSERT_PIECE_BYTES // len(lines[0]) + 3)
    path.write_bytes(big)
    assert read(0, len(big) + 100) == big
