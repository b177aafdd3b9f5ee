"""The core's runner conformance suite, run against ``LimitedProcessRunner``: what
every runner must do, and so what this third-party one does."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mastra_admin.core.testing.runner import FolderCopySource, RunnerConformance
from mastra_admin.runners.limited import LimitedProcessRunner, LimitedRunnerSettings


class TestLimitedProcessRunner(RunnerConformance):
    __test__ = True

    @pytest.fixture
    async def runner(self, tmp_path: Path) -> AsyncIterator[LimitedProcessRunner]:
        first = random.randrange(30000, 31900, 20)
        settings = LimitedRunnerSettings(
            builds_dir=tmp_path / "builds", port_range_start=first, port_range_end=first + 19
        )
        runner = LimitedProcessRunner(FolderCopySource(), settings, data_dir=tmp_path)
        yield runner
        await runner.close()
