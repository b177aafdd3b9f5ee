"""The core's storage conformance suite, against the embedded PostgreSQL and (with
MASTRA_ADMIN_TEST_DATABASE_URL) against that server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mastra_admin.core.testing import StorageConformance
from mastra_admin.stores.pg import PgAdminStorage


class TestPgStorageConformance(StorageConformance):
    __test__ = True

    @pytest.fixture
    async def storage(self, fresh_storage: PgAdminStorage) -> AsyncIterator[PgAdminStorage]:
        yield fresh_storage
