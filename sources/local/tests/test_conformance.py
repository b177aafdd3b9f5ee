"""The core's source conformance suite, run against the local source."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mastra_admin.core.testing import SourceConformance
from mastra_admin.sources.local import LocalProjectSource


class TestLocalSourceConformance(SourceConformance):
    __test__ = True

    @pytest.fixture
    async def source(self, projects_root: Path) -> AsyncIterator[LocalProjectSource]:
        made = LocalProjectSource(base_paths=[projects_root], watch_debounce_ms=200)
        yield made
        await made.close()
