"""Build logs: masking, the file, and followers that replay, go live and end."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mastra_admin.core.build_logs import BuildLogs, LogChunk
from mastra_admin.core.local_file_storage import LocalFileStorage


@pytest.fixture
def storage(tmp_path: Path) -> LocalFileStorage:
    return LocalFileStorage(tmp_path / "files")


@pytest.fixture
def logs(storage: LocalFileStorage) -> BuildLogs:
    return BuildLogs(storage, poll_interval_s=0.1)


class Finished:
    """A build status that a test flips; ``is_finished`` is what follow() polls."""

    def __init__(self) -> None:
        self.done = False

    async def __call__(self) -> bool:
        return self.done


async def _collect(
    logs: BuildLogs, build_id: str, finished: Finished, offset: int = 0
) -> list[LogChunk]:
    return [c async for c in logs.follow(build_id, offset=offset, is_finished=finished)]


async def test_secrets_are_masked_longest_first(logs: BuildLogs) -> None:
    sink = logs.sink("b1", ["abc", "abcdef", ""])
    await sink("token=abcdef short=abc")
    await sink("nothing secret")
    assert await logs.read("b1") == "token=*** short=***\nnothing secret\n"


async def test_a_line_with_newlines_becomes_several(logs: BuildLogs) -> None:
    sink = logs.sink("b1")
    await sink("one\r\ntwo\nthree")
    assert await logs.read("b1") == "one\ntwo\nthree\n"
    assert await logs.read("b1", offset=4) == "two\nthree\n"
    assert await logs.read("never-written") == ""


async def test_follow_replays_then_goes_live_then_ends(logs: BuildLogs) -> None:
    sink = logs.sink("b1")
    await sink("first")
    await sink("zweite Zeile ✓")
    finished = Finished()
    follower = asyncio.create_task(_collect(logs, "b1", finished))
    await asyncio.sleep(0.05)
    await sink("live")
    finished.done = True
    await logs.finish("b1")
    chunks = await asyncio.wait_for(follower, 5)
    assert [c.line for c in chunks] == ["first", "zweite Zeile ✓", "live"]
    raw = (await logs.read("b1")).encode()
    assert [c.offset for c in chunks] == [6, 6 + len("zweite Zeile ✓\n".encode()), len(raw)]


async def test_follow_resumes_after_an_offset(logs: BuildLogs) -> None:
    sink = logs.sink("b1")
    for line in ("a", "bb", "ccc"):
        await sink(line)
    finished = Finished()
    finished.done = True
    first = await _collect(logs, "b1", finished)
    rest = await _collect(logs, "b1", finished, offset=first[0].offset)
    assert [c.line for c in rest] == ["bb", "ccc"]
    assert [c.offset for c in rest] == [c.offset for c in first[1:]]


async def test_lines_written_just_before_the_finish_are_drained(logs: BuildLogs) -> None:
    finished = Finished()
    follower = asyncio.create_task(_collect(logs, "b1", finished))
    await asyncio.sleep(0.02)
    sink = logs.sink("b1")
    for i in range(200):
        await sink(f"line {i}")
    finished.done = True
    await logs.finish("b1")
    chunks = await asyncio.wait_for(follower, 5)
    assert [c.line for c in chunks] == [f"line {i}" for i in range(200)]


async def test_many_followers_at_once(logs: BuildLogs) -> None:
    finished = Finished()
    followers = [asyncio.create_task(_collect(logs, "b1", finished)) for _ in range(25)]
    await asyncio.sleep(0.02)
    assert logs.followers("b1") == 25
    sink = logs.sink("b1")
    for i in range(30):
        await sink(f"{i}")
    finished.done = True
    await logs.finish("b1")
    results = await asyncio.wait_for(asyncio.gather(*followers), 5)
    assert all([c.line for c in r] == [str(i) for i in range(30)] for r in results)
    assert logs.followers("b1") == 0


async def test_finish_wakes_followers_without_waiting_for_the_poll(
    storage: LocalFileStorage,
) -> None:
    logs = BuildLogs(storage, poll_interval_s=30)
    finished = Finished()
    follower = asyncio.create_task(_collect(logs, "b1", finished))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    finished.done = True
    await logs.finish("b1")
    assert await asyncio.wait_for(follower, 5) == []
    assert time.monotonic() - started < 1


async def test_a_log_written_by_another_process_is_followed(
    storage: LocalFileStorage, logs: BuildLogs
) -> None:
    log_file = Path(storage.local_path(BuildLogs.path("b1")) or "")
    script = textwrap.dedent(
        f"""
        import os, time
        os.makedirs({str(log_file.parent)!r}, exist_ok=True)
        for i in range(5):
            with open({str(log_file)!r}, "a") as f:
                f.write(f"remote {{i}}\\n")
            time.sleep(0.05)
        """
    )
    finished = Finished()
    follower = asyncio.create_task(_collect(logs, "b1", finished))
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    await asyncio.sleep(0.3)  # longer than the poll interval: no in-process wake-up exists
    finished.done = True
    chunks = await asyncio.wait_for(follower, 5)
    assert [c.line for c in chunks] == [f"remote {i}" for i in range(5)]


async def test_a_log_that_cannot_be_written_does_not_fail_the_build(
    storage: LocalFileStorage, tmp_path: Path
) -> None:
    (tmp_path / "files" / "builds").write_text("a file where the folder should be")
    logs = BuildLogs(storage)
    sink = logs.sink("b1", ["s3cr3t"])
    await sink("a line with s3cr3t")
    assert await logs.read("b1") == ""
