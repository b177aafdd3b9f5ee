"""The observability writer: batches by size and time, rotation, naming, nothing lost."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mastra_admin.core.errors import InvalidInput, Unavailable
from mastra_admin.core.events import EventType, Log, Span
from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.observability_writer import ObservabilityWriter, write_batch

NAME_RE = re.compile(r"^(?P<folder>[a-z]+)/(?P<project>[^/]+)/\d{8}T\d{12}Z_[0-9a-f]{32}\.jsonl$")


@pytest.fixture
def storage(tmp_path: Path) -> LocalFileStorage:
    return LocalFileStorage(tmp_path / "files")


async def _records(storage: LocalFileStorage, prefix: str = "") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for info in await storage.list(prefix):
        found += [json.loads(line) for line in (await storage.read(info.path)).splitlines()]
    return found


def _span(i: int, project: str = "p1") -> dict[str, Any]:
    return {"project_id": project, "span_id": f"s{i}", "trace_id": "t", "name": "agent.run"}


async def test_a_full_batch_is_written_at_once_and_flush_writes_the_rest(
    storage: LocalFileStorage,
) -> None:
    writer = ObservabilityWriter(storage, batch_size=1000)
    for i in range(2500):
        await writer.record_span(_span(i))
    files = await storage.list("spans/")
    assert len(files) == 2
    assert writer.pending_events == 500
    await writer.flush()
    files = await storage.list("spans/")
    assert len(files) == 3
    assert all(NAME_RE.match(f.path) for f in files)
    sizes = [len((await storage.read(f.path)).splitlines()) for f in files]
    assert sorted(sizes) == [500, 1000, 1000]
    ids = [r["span_id"] for r in await _records(storage)]
    assert sorted(ids) == sorted(f"s{i}" for i in range(2500))


async def test_file_names_sort_by_time_and_name_the_type_and_project(
    storage: LocalFileStorage,
) -> None:
    before = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    writer = ObservabilityWriter(storage)
    await writer.record_span(_span(1, "p1"))
    await writer.record_span(_span(2, "p2"))
    await writer.record_log({"project_id": "p1", "id": "l1", "message": "hi"})
    await writer.record_feedback({"project_id": "p1", "id": "f1"})
    await writer.flush()
    paths = [f.path for f in await storage.list("")]
    matches = [NAME_RE.match(p) for p in paths]
    assert all(matches)
    assert sorted((m["folder"], m["project"]) for m in matches if m) == [
        ("feedback", "p1"),
        ("logs", "p1"),
        ("spans", "p1"),
        ("spans", "p2"),
    ]
    stamps = [p.split("/")[-1].split("_")[0] for p in paths]
    assert all(stamp >= before for stamp in stamps)


async def test_batches_are_written_when_old_enough(storage: LocalFileStorage) -> None:
    async with ObservabilityWriter(storage, flush_interval_s=0.2) as writer:
        await writer.record_log({"project_id": "p1", "id": "l1", "message": "one"})
        for _ in range(100):
            if await storage.list("logs/"):
                break
            await asyncio.sleep(0.05)
        assert [r["id"] for r in await _records(storage, "logs/")] == ["l1"]
        assert writer.pending_events == 0


async def test_files_rotate_by_size(storage: LocalFileStorage) -> None:
    writer = ObservabilityWriter(storage, max_file_bytes=1000)
    for i in range(60):
        await writer.record_log({"project_id": "p1", "id": f"l{i:03}", "message": "x" * 60})
    await writer.flush()
    files = await storage.list("logs/")
    assert len(files) >= 6
    assert all(f.size <= 1000 for f in files)
    assert sorted(r["id"] for r in await _records(storage)) == [f"l{i:03}" for i in range(60)]


async def test_an_event_bigger_than_a_file_gets_a_file_of_its_own(
    storage: LocalFileStorage,
) -> None:
    writer = ObservabilityWriter(storage, max_file_bytes=100)
    await writer.record_log({"project_id": "p1", "id": "small", "message": "a"})
    await writer.record_log({"project_id": "p1", "id": "big", "message": "b" * 500})
    assert writer.pending_events == 0
    assert len(await storage.list("logs/")) == 2


async def test_shutdown_writes_everything_and_refuses_more(storage: LocalFileStorage) -> None:
    writer = ObservabilityWriter(storage, flush_interval_s=60)
    await writer.start()
    for i in range(123):
        await writer.record_metric({"project_id": "p9", "id": f"m{i}", "name": "n", "value": i})
    await writer.shutdown()
    assert len(await _records(storage, "metrics/p9/")) == 123
    with pytest.raises(Unavailable):
        await writer.record_metric({"project_id": "p9", "id": "late"})


async def test_a_failed_write_keeps_the_events_for_the_next_flush(
    storage: LocalFileStorage, tmp_path: Path
) -> None:
    blocker = tmp_path / "files" / "scores"
    blocker.write_text("a file where the folder should be")
    writer = ObservabilityWriter(storage)
    for i in range(5):
        await writer.record_score({"project_id": "p1", "id": f"sc{i}", "value": 1})
    with pytest.raises(Unavailable):
        await writer.flush()
    assert writer.pending_events == 5
    blocker.unlink()
    await writer.record_score({"project_id": "p1", "id": "sc5", "value": 1})
    await writer.flush()
    assert [r["id"] for r in await _records(storage, "scores/")] == [f"sc{i}" for i in range(6)]
    assert writer.write_errors == 1


async def test_concurrent_recorders_lose_and_duplicate_nothing(storage: LocalFileStorage) -> None:
    writer = ObservabilityWriter(storage, batch_size=100)

    async def recorder(n: int) -> None:
        for i in range(300):
            await writer.record_span(_span(n * 1000 + i, project=f"p{n % 3}"))

    await asyncio.gather(*(recorder(n) for n in range(10)))
    await writer.shutdown()
    ids = [r["span_id"] for r in await _records(storage)]
    assert len(ids) == 3000
    assert len(set(ids)) == 3000


async def test_models_are_encoded_as_json_and_typed_by_their_class(
    storage: LocalFileStorage,
) -> None:
    start = datetime(2026, 11, 21, 22, 40, 51, 123456, tzinfo=UTC)
    writer = ObservabilityWriter(storage)
    await writer.record_events(
        [
            Span(project_id="p1", trace_id="t", span_id="s", name="run", start_time=start),
            Log(project_id="p1", id="l", message="m", timestamp=start),
            {"project_id": "p1", "id": "plain", "timestamp": start},
        ],
        event_type=EventType.METRIC,
    )
    await writer.flush()
    (span,) = await _records(storage, "spans/")
    assert span["start_time"] == "2026-11-21T22:40:51.123456Z"
    assert span["status"] == "unset"
    (log,) = await _records(storage, "logs/")
    assert log["message"] == "m"
    (plain,) = await _records(storage, "metrics/")
    assert plain["timestamp"] == "2026-11-21T22:40:51.123456+00:00"
    with pytest.raises(InvalidInput):
        await writer.record_events([{"project_id": "p1"}])


async def test_project_ids_must_be_safe_folder_names(storage: LocalFileStorage) -> None:
    writer = ObservabilityWriter(storage)
    with pytest.raises(InvalidInput):
        await writer.record_span(_span(1, project="../etc"))
    await writer.record_span({"span_id": "no-project"})
    await writer.flush()
    assert [f.path.split("/")[1] for f in await storage.list("spans/")] == ["unknown"]


async def test_encoded_lines_are_batched_as_they_are_and_a_bad_one_refuses_all(
    storage: LocalFileStorage,
) -> None:
    writer = ObservabilityWriter(storage, batch_size=3)
    lines = [json.dumps({"id": str(i), "project_id": "p1"}).encode() + b"\n" for i in range(4)]
    await writer.record_encoded(EventType.LOG, "p1", lines)
    assert writer.pending_events == 1  # three written as a full batch
    for bad in (b'{"id": "x"}', b'{}\n{"id": "forged"}\n', b"", b"\n"):
        with pytest.raises(InvalidInput):
            await writer.record_encoded(EventType.LOG, "p1", [lines[0], bad])
    assert writer.pending_events == 1  # nothing of a refused call was taken
    with pytest.raises(InvalidInput):
        await writer.record_encoded(EventType.LOG, "../etc", lines)
    await writer.flush()
    assert [r["id"] for r in await _records(storage, "logs/p1/")] == ["0", "1", "2", "3"]


async def test_write_batch_writes_one_file_and_returns_its_path(
    storage: LocalFileStorage,
) -> None:
    records = [{"id": str(i), "project_id": "p1"} for i in range(3)]
    path = await write_batch(storage, EventType.LOG, "p1", records)
    match = NAME_RE.match(path)
    assert match
    assert (match["folder"], match["project"]) == ("logs", "p1")
    lines = (await storage.read(path)).decode().splitlines()
    assert [json.loads(line) for line in lines] == records
    with pytest.raises(InvalidInput):
        await write_batch(storage, "nonsense", "p1", records)
