"""The core's storage conformance suite, against the embedded PostgreSQL and (with
MASTRA_ADMIN_TEST_DATABASE_URL) against that server."""

from __future__ import annotations

import pytest

from mastra_admin.core.testing.storage import StorageConformance
from mastra_admin.stores.pg import PgAdminStorage


class TestPgStorageConformance(StorageConformance):
    __test__ = True

    @pytest.fixture
    async def storage(self, fresh_storage: PgAdminStorage) -> PgAdminStorage:
        return fresh_storage
