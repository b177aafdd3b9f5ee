"""The core's runner conformance suite, run against ``LocalProcessRunner``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from mastra_admin.core.testing.runner import RunnerConformance
from mastra_admin.runners.local import LocalProcessRunner

pytestmark = pytest.mark.slow


class TestLocalProcessRunner(RunnerConformance):
    __test__ = True

    @pytest.fixture
    async def runner(
        self, make_runner: Callable[..., LocalProcessRunner]
    ) -> AsyncIterator[LocalProcessRunner]:
        runner = make_runner()
        yield runner
        await runner.close()
