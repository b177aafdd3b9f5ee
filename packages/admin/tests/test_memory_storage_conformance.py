"""The in-memory storage passes the same storage conformance suite as every adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mastra_admin.core.storage import AdminStorage
from mastra_admin.core.testing.memory import InMemoryAdminStorage
from mastra_admin.core.testing.storage import StorageConformance


class TestInMemoryStorageConformance(StorageConformance):
    __test__ = True

    @pytest.fixture
    async def storage(self) -> AsyncIterator[AdminStorage]:
        storage = InMemoryAdminStorage()
        await storage.init()
        yield storage
        await storage.close()
