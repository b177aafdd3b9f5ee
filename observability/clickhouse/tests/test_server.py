"""The same suite through clickhouse-driver, against the ClickHouse server named by
``MASTRA_ADMIN_TEST_CLICKHOUSE_URL`` (e.g. ``clickhouse://default:@127.0.0.1:9000``).

No modern ClickHouse server can be installed on every machine that runs these tests,
so this is the one set that exists only when a server is given; the statements and
parameters it sends are unit-tested in ``test_sql.py`` regardless.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.testing import ObservabilityQueryConformance
from mastra_admin.observability.clickhouse import ClickHouseObservability

from .conftest import fixture_records, jsonl, settings_for

SERVER_URL = os.environ.get("MASTRA_ADMIN_TEST_CLICKHOUSE_URL")

if SERVER_URL:

    @pytest.fixture
    async def server_backend() -> AsyncIterator[ClickHouseObservability]:
        backend = ClickHouseObservability(settings_for(url=SERVER_URL))
        await backend.init()
        try:
            yield backend
        finally:
            await backend.drop()
            await backend.close()

    class TestServerQueries(ObservabilityQueryConformance):
        __test__ = True

        @pytest.fixture
        async def backend(self, server_backend: ClickHouseObservability) -> ClickHouseObservability:
            return server_backend

    async def test_server_ingests_exactly_once(
        server_backend: ClickHouseObservability, storage: LocalFileStorage
    ) -> None:
        records = [{**r, "project_id": "p", "deployment_id": "d"} for r in fixture_records("spans")]
        await storage.write("spans/p/1_a.jsonl", jsonl(records) + b"bad line\n")
        worker = server_backend.ingestion_worker(storage)
        result = await worker.process_once()
        assert (result.events_ingested, result.bad_lines) == (2, 1)
        journal = worker._journal
        await worker.stop()
        assert journal.batch is None
        tree = await server_backend.query.get_trace("27712e47a2c673afd73afac18fcacaa5")
        assert tree is not None
        assert len(tree.spans) == 2

    async def test_server_migrate_is_up_to_date(server_backend: ClickHouseObservability) -> None:
        status = await server_backend.check()
        assert status.up_to_date, status
