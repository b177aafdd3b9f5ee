"""The core's runner conformance suite, unchanged, run against ``DockerRunner``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import ClassVar

import pytest

from mastra_admin.core.testing.runner import RunnerConformance
from mastra_admin.runners.docker import DockerRunner

pytestmark = pytest.mark.slow


class TestDockerRunner(RunnerConformance):
    __test__ = True
    local_processes: ClassVar[bool] = False

    @pytest.fixture
    async def runner(self, make_runner: Callable[..., DockerRunner]) -> AsyncIterator[DockerRunner]:
        runner = make_runner()
        yield runner
        await runner.close()
