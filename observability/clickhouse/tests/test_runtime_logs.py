"""A real Mastra server's pino-pretty output (``tests/fixtures/mastra-stdout``) read
as one record per pino record, on the real engine; and the same record received
both on stdout and through an exporter shown once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from mastra_admin.core.events import LogLevel
from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.observability import LogQuery
from mastra_admin.core.observability_writer import write_batch
from mastra_admin.observability.clickhouse import ClickHouseObservability
from mastra_admin.observability.clickhouse._runtime import (
    MAX_RECORD_LINES,
    before_last_record,
    records,
)

from .conftest import REPO_ROOT, settings_for
from .test_build_dirs import make_build

STDOUT = REPO_ROOT / "tests" / "fixtures" / "mastra-stdout"


def parsed(data: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in records(data, "tok").splitlines()]


def test_each_pino_record_is_one_record_with_its_fields() -> None:
    got = parsed((STDOUT / "pino-pretty-default-observability.log").read_bytes())
    levels = ["warn", "info", "error", "warn", "info", "info", "info", "info"]
    assert [r["level"] for r in got] == levels
    running = got[1]
    assert running["message"] == "Mastra API running"
    assert running["timestamp"] == "2026-12-07T03:43:38.792+00:00"
    assert running["attributes"] == {"url": "http://localhost:4100/api", "logger": "probe"}
    error = got[2]
    assert error["message"] == "Batch upload failed after all retries, dropping batch"
    err = error["attributes"]["err"]  # type: ignore[index]
    assert err["id"] == "MASTRA_PLATFORM_EXPORTER_FAILED_TO_BATCH_UPLOAD_LOGS"
    assert err["details"] == {"signal": "logs", "droppedBatchSize": 1}
    stack = err["stack"].splitlines()
    assert stack[0] == "Error: fetch failed"
    assert stack[-1].startswith("at TCPConnectWrap.afterConnect")
    assert got[3]["attributes"] == {
        "batchSize": 1,
        "flushReason": "time",
        "durationMs": 6028,
        "failedSignals": ["logs"],
        "logger": "probe",
    }
    assert not any("\x1b" in json.dumps(r) for r in got)


def test_lines_that_are_neither_pass_unchanged() -> None:
    data = (
        b'{"level":30,"time":1,"msg":"json line"}\n'
        b"plain text\n"
        b"    indented without a record above\n"
        b"\x1b[32mINFO\x1b[39m [not a time] (x): odd time\n"
        b"\xff\xfe broken utf-8\n"
    )
    out = records(data, "tok").splitlines()
    assert out[0] == b'{"level":30,"time":1,"msg":"json line"}'
    assert out[1] == b"plain text"
    assert out[2] == b"    indented without a record above"
    odd = json.loads(out[3])
    assert (odd["message"], odd["attributes"]["time"]) == ("odd time", "not a time")
    assert "timestamp" not in odd  # the parser stamps it when it arrives
    assert out[4] == b"\xff\xfe broken utf-8"


def test_a_runaway_record_is_cut() -> None:
    head = b"INFO [2026-12-07 03:43:38.792 +0000] (probe): dump\n    data: [\n"
    body = b"      1,\n" * (MAX_RECORD_LINES + 10)
    out = records(head + body, "tok").splitlines()
    assert len(out) == 1 + 11  # the record (its first 2,000 lines), the rest as they are
    assert len(json.loads(out[0])["attributes"]["data"]) < 100_000


async def test_pretty_output_is_queryable_by_level_time_and_order(
    backend: ClickHouseObservability, storage: LocalFileStorage, tmp_path: Path
) -> None:
    obs = make_build(tmp_path / "builds")
    fixture = (STDOUT / "pino-pretty-default-observability.log").read_bytes()
    (obs / "runtime" / "stdout-1-2.log").write_bytes(fixture)
    worker = backend.ingestion_worker(storage, build_dirs=[str(tmp_path / "builds")])
    result = await worker.process_once()
    assert (result.events_ingested, result.bad_lines) == (8, 0)
    warned = await backend.query.list_logs(LogQuery(project_id="proj_t", level=LogLevel.WARN))
    assert [(r.level, r.message) for r in warned.items] == [
        (LogLevel.WARN, "Batch flush completed with dropped signal batches"),
        (LogLevel.ERROR, "Batch upload failed after all retries, dropping batch"),
        (LogLevel.WARN, warned.items[2].message),
    ]
    assert warned.items[2].message.startswith("No `storage` configured on Mastra")
    page = await backend.query.list_logs(LogQuery(project_id="proj_t", limit=3))
    # Three records stamped with the same millisecond, newest first, in stream order.
    assert [r.message for r in page.items] == [
        "Mastra shutdown completed",
        "[Observability] Shutdown completed [name=probe]",
        "MastraPlatformExporter shutdown complete",
    ]
    assert page.items[0].timestamp == datetime(2026, 12, 7, 3, 44, 21, 185000, tzinfo=UTC)
    assert all(r.source == "stdout" for r in page.items)
    await worker.stop()


async def test_a_record_also_exported_is_shown_once(
    backend: ClickHouseObservability, storage: LocalFileStorage, tmp_path: Path
) -> None:
    obs = make_build(tmp_path / "builds")
    (obs / "runtime" / "stdout-1-2.log").write_bytes(
        b"\x1b[33mWARN\x1b[39m [2026-12-07 03:43:49.789 +0000] (probe): \x1b[36mslow tool\x1b[39m\n"
        b"\x1b[32mINFO\x1b[39m [2026-12-07 03:43:50.100 +0000] (probe): only printed\n"
        b"\x1b[33mWARN\x1b[39m [2026-12-07 03:50:00.000 +0000] (probe): slow tool\n"
    )
    exported = {
        "logId": "log-1",
        "timestamp": "2026-12-07T03:43:49.791Z",  # the exporter's own stamp
        "level": "warn",
        "message": "slow tool",
        "traceId": "trace-1",
        "spanId": "span-1",
        "metadata": {"deploymentId": "dep_t"},
    }
    await write_batch(storage, "log", "proj_t", [{**exported, "deploymentId": "dep_t"}])
    worker = backend.ingestion_worker(storage, build_dirs=[str(tmp_path / "builds")])
    assert (await worker.process_once()).events_ingested == 4
    page = await backend.query.list_logs(LogQuery(project_id="proj_t"))
    seen = [(r.message, r.source, r.trace_id) for r in page.items]
    assert seen == [
        ("slow tool", "stdout", None),  # six minutes later: another record
        ("only printed", "stdout", None),
        ("slow tool", "collector", "trace-1"),
    ]
    assert page.total == 3
    # Asked for by trace, the exporter's copy is what there is.
    traced = await backend.query.list_logs(LogQuery(project_id="proj_t", trace_id="trace-1"))
    assert [r.source for r in traced.items] == ["collector"]
    await worker.stop()


def test_a_batch_ends_before_the_record_whose_lines_may_follow() -> None:
    head = b"INFO [2026-12-07 03:43:38.792 +0000] (probe): a\n"
    field = b'    key: "v"\n'
    assert before_last_record([head + field + head + field]) == [head + field]
    assert before_last_record([head + field, head]) == [head + field, head]
    assert before_last_record([head + field]) == [head + field]  # nothing would be left
    assert before_last_record([b"INFO [x] (p): a\n" + field, field]) == [
        b"INFO [x] (p): a\n" + field,
        field,
    ]  # the start is not in the last piece: as it is


async def test_records_are_whole_across_batches(
    chdb_path: Path, storage: LocalFileStorage, tmp_path: Path
) -> None:
    backend = ClickHouseObservability(settings_for(path=chdb_path, chunk_bytes=64 * 1024))
    await backend.init()
    try:
        obs = make_build(tmp_path / "builds")
        record = (
            b"\x1b[32mINFO\x1b[39m [2026-12-07 03:43:38.792 +0000] (probe): step %d\n"
            b'    \x1b[35mrunId\x1b[39m: "run"\n    \x1b[35mstack\x1b[39m: [\n      1,\n      2\n    ]\n'
        )
        count = 3000  # about 6 batches of 64 KiB
        (obs / "runtime" / "stdout-1-2.log").write_bytes(b"".join(record % n for n in range(count)))
        worker = backend.ingestion_worker(storage, build_dirs=[str(tmp_path / "builds")])
        ingested = 0
        while (result := await worker.process_once()).files_processed:
            ingested += result.events_ingested
        assert ingested == count
        page = await backend.query.list_logs(LogQuery(project_id="proj_t", limit=1000))
        assert page.total == count
        assert all(
            log.attributes == {"runId": "run", "stack": [1, 2], "logger": "probe"}
            for log in page.items
        )
        await worker.stop()
    finally:
        await backend.drop()
        await backend.close()


def test_hostile_text_still_makes_valid_json() -> None:
    data = (
        b'ERROR [2026-12-07 03:43:38.792 +0000] (a"b\\c): quote " back \\ tab \t nul \x00 \xff\n'
        b'    "key": not a field\n'
        b'    ok: "plain"\n'
        b"    bad: {unclosed\n"
        b"    deep: " + b"[" * 5000 + b"\n"
        b"    \x1b[35mx\x1b[39m: \x1b]0;title\x07 1\n"
    )
    (line,) = records(data, "tok").splitlines()
    record = json.loads(line)
    assert record["level"] == "error"
    assert record["message"].startswith('quote " back \\ tab \t nul \x00')
    attributes = record["attributes"]
    assert attributes["ok"] == "plain"
    assert attributes["details"] == '"key": not a field'  # indented, before any field
    assert attributes["bad"] == "{unclosed"
    assert attributes["deep"] == "[" * 5000  # too deep to decode: kept as text
    assert attributes["logger"] == 'a"b\\c'


def test_trace_and_span_fields_are_the_record_ids() -> None:
    data = (
        b"\x1b[33mWARN\x1b[39m [2026-12-07 18:01:14.923 +0000] (mastra-real): \x1b[36mguessing\x1b[39m\n"
        b'    \x1b[35mtrace_id\x1b[39m: "0af7e1b970bd1b2205d92e9d52520b0a"\n'
        b'    \x1b[35mspan_id\x1b[39m: "c10766a510ec831a"\n'
        b"    \x1b[35mletters\x1b[39m: 9\n"
    )
    (record,) = parsed(data)
    assert record["trace_id"] == "0af7e1b970bd1b2205d92e9d52520b0a"
    assert record["span_id"] == "c10766a510ec831a"
    assert record["attributes"] == {"letters": 9, "logger": "mastra-real"}
