"""Fixtures for the local runner's tests: a folder-copying source, runners on a
private port range, and a check after every test that no process was left behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from mastra_admin.core.runner import BuildArtifact, BuildContext
from mastra_admin.core.testing.projects import write_mastra_project
from mastra_admin.core.testing.runner import (
    FolderCopySource,
    LogCollector,
    leftover_processes,
    make_build_context,
)
from mastra_admin.runners.local import LocalProcessRunner, LocalRunnerSettings

_next_range = [20000]


def port_block(size: int = 20) -> tuple[int, int]:
    """A port range of its own for each runner, so tests never share ports."""
    start = _next_range[0]
    _next_range[0] += size
    return start, start + size - 1


@pytest.fixture
def make_runner(tmp_path: Path) -> Callable[..., LocalProcessRunner]:
    def make(**overrides: object) -> LocalProcessRunner:
        start, end = port_block()
        fields: dict[str, object] = {
            "builds_dir": tmp_path / "builds",
            "port_range_start": start,
            "port_range_end": end,
            "stop_grace_s": 2.0,
        }
        fields.update(overrides)
        settings = LocalRunnerSettings.model_validate(fields)
        return LocalProcessRunner(FolderCopySource(), settings, data_dir=tmp_path / "data")

    return make


@pytest.fixture
async def local_runner(
    make_runner: Callable[..., LocalProcessRunner],
) -> AsyncIterator[LocalProcessRunner]:
    runner = make_runner()
    yield runner
    await runner.close()


@pytest.fixture(autouse=True)
async def nothing_left_behind(tmp_path: Path) -> AsyncIterator[None]:
    """After every test: no process under the test's folder, no child of ours."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        left = leftover_processes(tmp_path)
        children = [
            p
            for p in psutil.Process().children(recursive=True)
            if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE
        ]
        if not left and not children:
            return
        if asyncio.get_running_loop().time() > deadline:
            for process in children:
                process.kill()
            raise AssertionError(f"left behind: {left} {children}")
        await asyncio.sleep(0.1)


class BuiltProject:
    """One ``ok`` project built once per test session, for tests that only start it."""

    def __init__(self, root: Path, builds_dir: Path, project_dir: Path) -> None:
        self.root = root
        self.builds_dir = builds_dir
        self.project_dir = project_dir
        self.ctx: BuildContext | None = None
        self.artifact: BuildArtifact | None = None

    def context(self, **kwargs: Any) -> BuildContext:
        """A new build context for the same deployment (so it may start the artifact)."""
        assert self.ctx is not None
        return make_build_context(self.project_dir, deployment=self.ctx.deployment, **kwargs)


@pytest.fixture(scope="session")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> BuiltProject:
    root = tmp_path_factory.mktemp("built")
    project_dir = write_mastra_project(root / "shared-agent", name="shared-agent")
    built = BuiltProject(root, root / "builds", project_dir)
    runner = LocalProcessRunner(
        FolderCopySource(), LocalRunnerSettings(builds_dir=built.builds_dir), data_dir=root
    )
    ctx = make_build_context(project_dir)

    async def build() -> BuildArtifact:
        return await runner.build(ctx, LogCollector())

    built.ctx = ctx
    built.artifact = asyncio.run(build())
    return built
