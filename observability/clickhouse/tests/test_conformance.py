"""The core's observability-query conformance suite, on the embedded engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mastra_admin.core.testing import ObservabilityQueryConformance
from mastra_admin.observability.clickhouse import ClickHouseObservability

from .conftest import settings_for


class TestClickHouseQueries(ObservabilityQueryConformance):
    __test__ = True

    @pytest.fixture
    async def backend(self, chdb_path: Path) -> AsyncIterator[ClickHouseObservability]:
        backend = ClickHouseObservability(settings_for(path=chdb_path))
        await backend.init()
        try:
            yield backend
        finally:
            await backend.drop()
            await backend.close()
