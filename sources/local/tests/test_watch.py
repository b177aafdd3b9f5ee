"""watch_changes: one batch per burst, build folders ignored, new folders followed, cache ended."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path

import pytest

from mastra_admin.core.source import ChangeEvent, ChangeType, ProjectSource
from mastra_admin.sources.local import LocalProjectSource
from mastra_admin.sources.local._watch import collapse_changes

WriteProject = Callable[..., Path]
DEBOUNCE_MS = 250


class Watching:
    """A running watch: ``next()`` waits for a batch, ``quiet()`` asserts there is none."""

    def __init__(self, batches: AsyncGenerator[list[ChangeEvent], None]) -> None:
        self.batches = batches
        self.pending: asyncio.Future[list[ChangeEvent]] | None = None

    def _ensure(self) -> asyncio.Future[list[ChangeEvent]]:
        if self.pending is None:
            self.pending = asyncio.ensure_future(_next(self.batches))
        return self.pending

    async def started(self, probe: Path) -> None:
        """Wait until the watch reports changes, touching ``probe`` until it does, then
        drain what the probing produced."""
        pending = self._ensure()
        for attempt in range(40):
            await asyncio.to_thread(probe.write_text, str(attempt))
            done, _ = await asyncio.wait({pending}, timeout=0.5)
            if done:
                break
        pending.result()
        # Drain what the probing produced, until the watch is quiet.
        while True:
            self.pending = None
            pending = self._ensure()
            done, _ = await asyncio.wait({pending}, timeout=DEBOUNCE_MS * 3 / 1000)
            if not done:
                break

    async def next(self, wait_s: float = 10.0) -> list[ChangeEvent]:
        pending = self._ensure()
        batch = await asyncio.wait_for(asyncio.shield(pending), wait_s)
        self.pending = None
        return batch

    async def quiet(self, seconds: float) -> None:
        pending = self._ensure()
        done, _ = await asyncio.wait({pending}, timeout=seconds)
        if done:
            self.pending = None
            pytest.fail(f"unexpected batch: {pending.result()}")

    async def close(self) -> None:
        if self.pending is not None and not self.pending.done():
            self.pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await self.pending
        await self.batches.aclose()


async def _next(batches: AsyncIterator[list[ChangeEvent]]) -> list[ChangeEvent]:
    return await anext(batches)


async def _generator(
    stream: AsyncIterator[list[ChangeEvent]],
) -> AsyncGenerator[list[ChangeEvent], None]:
    async for batch in stream:
        yield batch


@pytest.fixture
async def project(write_project: WriteProject, base: Path) -> Path:
    return write_project(base / "agent", files={"node_modules/zod/index.js": ""})


@pytest.fixture
async def listed(source: LocalProjectSource, project: Path) -> ProjectSource:
    return (await source.list_projects())[0]


@pytest.fixture
async def watching(
    source: LocalProjectSource, listed: ProjectSource, project: Path
) -> AsyncIterator[Watching]:
    stream = source.watch_changes(listed)
    assert hasattr(stream, "aclose")
    watch = Watching(_generator(stream))
    await watch.started(project / "src" / "probe.txt")
    yield watch
    await watch.close()


async def test_a_burst_of_changes_arrives_as_one_batch(watching: Watching, project: Path) -> None:
    for i in range(25):
        (project / "src" / "mastra" / f"tool-{i}.ts").write_text(f"export const t{i} = {i};\n")

    batch = await watching.next()
    await watching.quiet(DEBOUNCE_MS * 4 / 1000)

    assert [e.path for e in batch] == sorted(f"src/mastra/tool-{i}.ts" for i in range(25))
    assert {e.type for e in batch} == {ChangeType.ADD}


async def test_two_bursts_are_two_batches(watching: Watching, project: Path) -> None:
    (project / "src" / "one.ts").write_text("1")
    first = await watching.next()
    (project / "src" / "one.ts").write_text("changed")
    (project / "package.json").write_text(json.dumps({"name": "agent", "version": "2.0.0"}))
    second = await watching.next()

    assert first == [ChangeEvent(type=ChangeType.ADD, path="src/one.ts")]
    assert second == [
        ChangeEvent(type=ChangeType.CHANGE, path="package.json"),
        ChangeEvent(type=ChangeType.CHANGE, path="src/one.ts"),
    ]


async def test_removals_are_unlinks(watching: Watching, project: Path) -> None:
    (project / "src" / "mastra" / "index.ts").unlink()

    batch = await watching.next()

    assert batch == [ChangeEvent(type=ChangeType.UNLINK, path="src/mastra/index.ts")]


async def test_changes_in_build_folders_are_ignored(watching: Watching, project: Path) -> None:
    (project / "node_modules" / "zod" / "index.js").write_text("changed")
    (project / "node_modules" / "new-dep").mkdir()
    (project / "src" / "mastra" / ".mastra").mkdir()
    (project / "src" / "mastra" / ".mastra" / "out.mjs").write_text("x")
    (project / "dist").mkdir()
    (project / "dist" / "index.js").write_text("x")
    await asyncio.sleep(DEBOUNCE_MS * 2 / 1000)
    (project / "src" / "real.ts").write_text("x")

    batch = await watching.next()

    assert [e.path for e in batch] == ["src/real.ts"]


async def test_files_in_a_new_top_level_folder_are_seen(watching: Watching, project: Path) -> None:
    (project / "lib").mkdir()
    first = await watching.next()
    await asyncio.sleep(0.3)  # the folder's own watch starts
    (project / "lib" / "helper.ts").write_text("x")
    second = await watching.next()

    assert first == [ChangeEvent(type=ChangeType.ADD, path="lib")]
    assert second == [ChangeEvent(type=ChangeType.ADD, path="lib/helper.ts")]


async def test_a_batch_ends_the_listing_cache(
    watching: Watching, source: LocalProjectSource, project: Path
) -> None:
    before = await source.list_projects()
    data = json.loads((project / "package.json").read_text())
    (project / "package.json").write_text(json.dumps({**data, "name": "renamed-agent"}))

    await watching.next()
    after = await source.list_projects()

    assert [p.name for p in before] == ["agent"]
    assert [p.name for p in after] == ["renamed-agent"]


async def test_close_ends_a_running_watch(
    source: LocalProjectSource, listed: ProjectSource
) -> None:
    batches = _generator(source.watch_changes(listed))
    waiting = asyncio.ensure_future(_next(batches))
    await asyncio.sleep(0.3)

    await source.close()

    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 5)


async def test_a_watch_outside_the_base_paths_is_refused(
    source: LocalProjectSource, write_project: WriteProject, tmp_path: Path
) -> None:
    from mastra_admin.core.errors import PermissionDenied
    from mastra_admin.sources.local import project_id_for

    outside = write_project(tmp_path / "outside" / "agent")
    forged = ProjectSource(id=project_id_for(outside), name="x", type="local", path=str(outside))

    with pytest.raises(PermissionDenied):
        await anext(aiter(source.watch_changes(forged)))


def test_collapsing_a_burst() -> None:
    burst = [
        (ChangeType.ADD, "new.ts"),
        (ChangeType.CHANGE, "new.ts"),
        (ChangeType.ADD, "tmp.swp"),
        (ChangeType.UNLINK, "tmp.swp"),
        (ChangeType.CHANGE, "gone.ts"),
        (ChangeType.UNLINK, "gone.ts"),
        (ChangeType.UNLINK, "replaced.ts"),
        (ChangeType.ADD, "replaced.ts"),
        (ChangeType.CHANGE, "edited.ts"),
        (ChangeType.CHANGE, "edited.ts"),
    ]

    assert collapse_changes(burst) == [
        ChangeEvent(type=ChangeType.CHANGE, path="edited.ts"),
        ChangeEvent(type=ChangeType.UNLINK, path="gone.ts"),
        ChangeEvent(type=ChangeType.ADD, path="new.ts"),
        ChangeEvent(type=ChangeType.CHANGE, path="replaced.ts"),
    ]
